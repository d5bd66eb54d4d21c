; TypeScript and TSX additions to javascript/references.scm: expressions that wrap a name, and
; TypeScript's parameter nodes.
(as_expression (identifier) @read)
(non_null_expression (identifier) @read)

(required_parameter pattern: (identifier) @bind)
(optional_parameter pattern: (identifier) @bind)
