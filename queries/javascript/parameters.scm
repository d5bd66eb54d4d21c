; JavaScript parameters bind names in their function (TypeScript wraps them in its own nodes).
(formal_parameters (identifier) @bind)
