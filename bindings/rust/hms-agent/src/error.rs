//! The crate's error: a code from the closed set the core uses everywhere (gRPC's codes) and
//! a message naming what was wrong.

use std::fmt;

/// The closed set of error codes (gRPC's), the same in every binding and over the network.
///
/// ```
/// use hms_agent::lifecycle::Code;
/// assert_eq!(Code::NotFound.as_str(), "NOT_FOUND");
/// assert_eq!(Code::from_i32(5), Code::NotFound);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The stream or hook worker was closed by the caller.
    Cancelled,
    /// An error with no better code.
    Unknown,
    /// Bad input (the message names the field), unknown method, format or handle.
    InvalidArgument,
    /// A deadline passed.
    DeadlineExceeded,
    /// Unknown agent, hook, plugin or invocation.
    NotFound,
    /// The id is taken.
    AlreadyExists,
    /// The principal may not do this.
    PermissionDenied,
    /// A stream was cut off for falling behind; [`Error::resume_sequence`] resumes it.
    ResourceExhausted,
    /// Not allowed now (a data directory in use, a call after `fork()`).
    FailedPrecondition,
    /// Aborted.
    Aborted,
    /// A resume point older than the history's retention.
    OutOfRange,
    /// Not implemented.
    Unimplemented,
    /// A bug or an unexpected failure.
    Internal,
    /// The manager was closed meanwhile, or the server is unreachable or gone.
    Unavailable,
    /// Data loss.
    DataLoss,
    /// Missing or bad credentials.
    Unauthenticated,
}

impl Code {
    /// The code for a C status value (an unknown value is [`Code::Unknown`]).
    ///
    /// ```
    /// # use hms_agent::lifecycle::Code;
    /// assert_eq!(Code::from_i32(14), Code::Unavailable);
    /// ```
    pub fn from_i32(code: i32) -> Code {
        use Code::*;
        match code {
            1 => Cancelled,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }

    /// The code's name as gRPC spells it (`"NOT_FOUND"`).
    ///
    /// ```
    /// # use hms_agent::lifecycle::Code;
    /// assert_eq!(Code::FailedPrecondition.as_str(), "FAILED_PRECONDITION");
    /// ```
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            Cancelled => "CANCELLED",
            Unknown => "UNKNOWN",
            InvalidArgument => "INVALID_ARGUMENT",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            NotFound => "NOT_FOUND",
            AlreadyExists => "ALREADY_EXISTS",
            PermissionDenied => "PERMISSION_DENIED",
            ResourceExhausted => "RESOURCE_EXHAUSTED",
            FailedPrecondition => "FAILED_PRECONDITION",
            Aborted => "ABORTED",
            OutOfRange => "OUT_OF_RANGE",
            Unimplemented => "UNIMPLEMENTED",
            Internal => "INTERNAL",
            Unavailable => "UNAVAILABLE",
            DataLoss => "DATA_LOSS",
            Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error: a request that could not be processed. Refusals by the lifecycle (a forbidden
/// transition, a failed precondition, a hook's veto) are not errors but answers
/// (`TransitionResponse::success == false`).
///
/// ```
/// use hms_agent::lifecycle::{Code, LifecycleManager, LifecycleManagerFFI};
/// let manager = LifecycleManagerFFI::new();
/// let err = manager.get_state("nobody", false).unwrap_err();
/// assert_eq!(err.code(), Code::NotFound);
/// assert!(err.to_string().starts_with("NOT_FOUND: "));
/// let _boxed: Box<dyn std::error::Error + Send + Sync> = err.into();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
    message: String,
    resume_sequence: u64,
}

impl Error {
    /// An error with this code and message.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{Code, Error};
    /// let e = Error::new(Code::Internal, "boom");
    /// assert_eq!(e.message(), "boom");
    /// ```
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error { code, message: message.into(), resume_sequence: 0 }
    }

    pub(crate) fn with_resume(mut self, resume_sequence: u64) -> Error {
        self.resume_sequence = resume_sequence;
        self
    }

    /// The code, from the closed set.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{Code, Error};
    /// assert_eq!(Error::new(Code::Aborted, "x").code(), Code::Aborted);
    /// ```
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message naming what was wrong.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{Code, Error};
    /// assert_eq!(Error::new(Code::Aborted, "x").message(), "x");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For a watch stream that ended: the `from_sequence` that resumes it with no gap and no
    /// duplicate.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{Code, Error};
    /// assert_eq!(Error::new(Code::Unavailable, "gone").resume_sequence(), None);
    /// ```
    pub fn resume_sequence(&self) -> Option<u64> {
        (self.resume_sequence != 0).then_some(self.resume_sequence)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Error {
        Error::new(Code::Internal, format!("decoding the library's answer: {e}"))
    }
}
