"""Syntax tree -> graph IR: expand modules, `repeat` and `if`, evaluate expressions, bind arguments,
apply scoped defaults (statements.py holds the statements, the modules beside it the rest)."""
