; JSX element names read a component (`<Table />` reads `Table`); added to the JavaScript and
; TSX reference queries (plain TypeScript has no JSX nodes).
(jsx_expression (identifier) @read)
(jsx_opening_element name: (identifier) @read)
(jsx_self_closing_element name: (identifier) @read)
