; `f(...)`
(call
  function: (identifier) @callee) @call

; `obj.method(...)`, `module.function(...)`, `self.method(...)`
(call
  function: (attribute
    object: (_) @receiver
    attribute: (identifier) @callee)) @call

; `x = ClassName(...)`: lets `x.method()` resolve to `ClassName.method`.
(assignment
  left: (identifier) @var
  right: (call
    function: (identifier) @constructor)) @binding
