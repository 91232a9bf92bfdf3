//! Adapters: the ports of [`crate::ports`] over real services, one module each.
//!
//! | adapter | port | for |
//! | --- | --- | --- |
//! | [`sqs::SqsQueue`] | [`EventQueue`](crate::ports::EventQueue) | AWS (and moto in tests) |
//! | [`memory::MemoryQueue`] | [`EventQueue`](crate::ports::EventQueue) | unit tests, embedding |

pub mod memory;
#[cfg(feature = "aws")]
pub mod sqs;
