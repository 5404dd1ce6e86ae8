//! filled in with the server
