//! Enrollment (placeholder while building).
