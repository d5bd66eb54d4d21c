; `import a.b`, `import a.b as c`
(import_statement
  name: (dotted_name) @module)
(import_statement
  name: (aliased_import
    name: (dotted_name) @module
    alias: (identifier) @alias))

; `from m import n`, `from m import n as k`, `from . import n`, `from m import *`
(import_from_statement
  module_name: (_) @from
  name: (dotted_name) @name)
(import_from_statement
  module_name: (_) @from
  name: (aliased_import
    name: (dotted_name) @name
    alias: (identifier) @alias))
(import_from_statement
  module_name: (_) @from
  (wildcard_import) @wildcard)
