"""The front end: spec text -> syntax tree (Lark grammar, parse, syntax errors) and the files a
spec reads (`use`, the shipped library under specs/)."""
