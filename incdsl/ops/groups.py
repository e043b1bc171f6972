"""Groups of ops named once, so that a pass, a backend or an importer asks `op in CONVS` instead of
spelling the family out (as tinygrad's `GroupOp`). A new op joins a group here, and every place
that treats the group alike follows; tests/ops/test_op_groups.py checks each group against the
op table (every member is an op, and has what the group promises)."""
from __future__ import annotations

# The convolutions: a kernel slid over the map, then an optional bias, batch norm and activation
# (the `_CONV_TAIL` arguments of table.py). Backends fold batch norm into them; importers fuse a
# following bn and act into them.
CONVS = frozenset({"conv", "dwconv", "sepconv"})

# Layers with a kernel: the convolutions and dense. GoogLeNet's "layers with parameters" (Szegedy
# et al. 2014, Section 5) that depth counts; what backward keeps the input of; what the counting
# conventions (ptflops, thop, ...) all count as MACs.
WEIGHTED = CONVS | {"dense"}

# The windowed pools: a kernel, stride and padding (with ceil mode) but no weights.
POOLS = frozenset({"maxpool", "avgpool"})

# Ops that slide a window over the map (kernel, stride, pad, optional dilation): the receptive
# field grows by their window.
WINDOWED = CONVS | POOLS

# Ops whose output has as many channels as their (first) input: a channel count is set further up
# (shape errors point at the layer that set it).
KEEPS_CHANNELS = frozenset({"act", "bn", "scale", "dropout", "drop_path", "lrn", "maxpool", "avgpool",
                            "adaptive_avgpool", "zeropad", "channel_shuffle", "add", "multiply"})
