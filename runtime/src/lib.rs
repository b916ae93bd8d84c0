//! Servicing runtime library.
