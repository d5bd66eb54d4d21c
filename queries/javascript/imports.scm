; `import d, {a as b} from './m'`, `import * as ns from './m'`
(import_statement
  (import_clause (identifier) @default)
  source: (string (string_fragment) @source))
(import_statement
  (import_clause (named_imports (import_specifier name: (_) @name alias: (_)? @alias)))
  source: (string (string_fragment) @source))
(import_statement
  (import_clause (namespace_import (identifier) @namespace))
  source: (string (string_fragment) @source))

; Re-exports: `export {a as b} from './m'`, `export * from './m'`
(export_statement
  (export_clause (export_specifier name: (_) @name alias: (_)? @alias))
  source: (string (string_fragment) @source))
(export_statement
  "*"
  source: (string (string_fragment) @wildcard_source))

; CommonJS: `const x = require('./m')`
(variable_declarator
  name: (identifier) @namespace
  value: (call_expression
    function: (identifier) @require
    arguments: (arguments (string (string_fragment) @source)))
  (#eq? @require "require"))

; CommonJS, destructured: `const { a, b: c } = require('./m')`
(variable_declarator
  name: (object_pattern (shorthand_property_identifier_pattern) @name)
  value: (call_expression
    function: (identifier) @require
    arguments: (arguments (string (string_fragment) @source)))
  (#eq? @require "require"))
(variable_declarator
  name: (object_pattern (pair_pattern key: (property_identifier) @name value: (identifier) @alias))
  value: (call_expression
    function: (identifier) @require
    arguments: (arguments (string (string_fragment) @source)))
  (#eq? @require "require"))
