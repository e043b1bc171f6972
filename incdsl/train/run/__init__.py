"""The steps of one training run, in the order `incdsl.train.loop.train` takes them (as Keras'
trainers/ splits a fit into its data adapters, callbacks and epoch loop):

- data: the training and validation data of the run, from an image folder or synthetic  (Keras)
- export: the saved inference models, model.keras and model.best.keras (the best held in memory)
- callbacks: the run's Keras callbacks (backup, log, best epoch, precise BN, TensorBoard)
- fit: fit itself, with signals deferred and one cleanup path for every way it can stop
- failures: what a stopped run raises (DataError, the signal's exit) and what it says
- report: the end of a run: the final export, batch norm, the lines printed, the TrainResult
"""
