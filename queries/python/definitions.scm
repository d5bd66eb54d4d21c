; Classes, functions and methods. Qualified names come from the enclosing definitions, so the
; query only marks the definitions themselves.
(class_definition
  name: (identifier) @name
  superclasses: (argument_list)? @bases) @class

(function_definition
  name: (identifier) @name
  parameters: (parameters) @params) @function

; Module-level variables and constants: plain assignments directly in the module body.
(module
  (expression_statement
    (assignment
      left: (identifier) @name)) @variable)
