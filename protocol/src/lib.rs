//! Skirmish wire protocol v1 (see `PROTOCOL.md`). Built out by the protocol issue.
