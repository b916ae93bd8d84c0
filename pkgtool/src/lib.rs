//! Packager library.
