; TypeScript and TSX additions to javascript/definitions.scm.
(abstract_class_declaration
  name: (_) @name) @class
