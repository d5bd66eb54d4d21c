; `f(...)`
(call_expression
  function: (identifier) @callee) @call

; `obj.method(...)`, `this.method(...)`
(call_expression
  function: (member_expression
    object: (_) @receiver
    property: (property_identifier) @callee)) @call

; `new C(...)`
(new_expression
  constructor: (identifier) @callee) @call

; `const x = new C(...)`: lets `x.method()` resolve to `C.method`.
(variable_declarator
  name: (identifier) @var
  value: (new_expression
    constructor: (identifier) @constructor)) @binding
