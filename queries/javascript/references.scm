; Names a definition reads or binds, for REFERENCES edges (a function → a module-level symbol).
; Shared by JavaScript, TypeScript and TSX; each adds its own parameter nodes
; (javascript/parameters.scm, typescript/references.scm) and JSX adds jsx-references.scm.
; `@read`: a name read (or assigned without a declaration, which writes the outer binding); a
; name in call position is a CALLS edge instead and is absent. `@bind`: a name declared in the
; enclosing scope, which shadows a module-level symbol of that name. Property names are
; `property_identifier` nodes and never match.

(expression_statement (identifier) @read)
(return_statement (identifier) @read)
(arguments (identifier) @read)
(variable_declarator value: (identifier) @read)
(assignment_expression left: (identifier) @read)
(assignment_expression right: (identifier) @read)
(augmented_assignment_expression left: (identifier) @read)
(augmented_assignment_expression right: (identifier) @read)
(member_expression object: (identifier) @read)
(subscript_expression object: (identifier) @read)
(subscript_expression index: (identifier) @read)
(binary_expression (identifier) @read)
(unary_expression argument: (identifier) @read)
(update_expression argument: (identifier) @read)
(ternary_expression (identifier) @read)
(array (identifier) @read)
(pair value: (identifier) @read)
(shorthand_property_identifier) @read
(spread_element (identifier) @read)
(parenthesized_expression (identifier) @read)
(arrow_function body: (identifier) @read)
(template_substitution (identifier) @read)
(await_expression (identifier) @read)
(yield_expression (identifier) @read)
(throw_statement (identifier) @read)
(for_in_statement right: (identifier) @read)
(sequence_expression (identifier) @read)
(export_statement value: (identifier) @read)

(variable_declarator name: (identifier) @bind)
(assignment_pattern left: (identifier) @bind)
(arrow_function parameter: (identifier) @bind)
(catch_clause parameter: (identifier) @bind)
(for_in_statement left: (identifier) @bind)
(array_pattern (identifier) @bind)
(pair_pattern value: (identifier) @bind)
(shorthand_property_identifier_pattern) @bind
