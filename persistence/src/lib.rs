//! Storage for Skirmish. Built out by the persistence issue.
