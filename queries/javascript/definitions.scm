; Functions, classes and methods; `const f = () => …` and `const f = function () …` count as
; functions. Module-level `const`/`let`/`var` bindings of other values are variables.
(function_declaration
  name: (identifier) @name) @function

(generator_function_declaration
  name: (identifier) @name) @function

(class_declaration
  name: (_) @name) @class

(method_definition
  name: (_) @name) @method

(variable_declarator
  name: (identifier) @name
  value: [(arrow_function) (function_expression)]) @function

(program
  [(lexical_declaration (variable_declarator name: (identifier) @name) @variable)
   (variable_declaration (variable_declarator name: (identifier) @name) @variable)
   (export_statement
     declaration: [(lexical_declaration (variable_declarator name: (identifier) @name) @variable)
                   (variable_declaration (variable_declarator name: (identifier) @name) @variable)])])
