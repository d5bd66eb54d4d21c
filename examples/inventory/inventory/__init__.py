"""A small inventory service used by the README's quick start and, later, by `refactor` demos."""
