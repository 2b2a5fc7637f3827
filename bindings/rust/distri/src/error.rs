//! Errors: the C ABI's status codes plus the library's message.
use std::fmt;

/// The status codes of distri.h (frozen values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    Io,
    Parse,
    Unavailable,
    Cancelled,
    DeadlineExceeded,
    Internal,
    Unimplemented,
    OutOfMemory,
    /// The job failed on the cluster (DISTRI_ERR_ABORTED); the message says why.
    Aborted,
    PermissionDenied,
    FailedPrecondition,
    /// A code this crate does not know (a newer library).
    Unknown(i32),
}

impl Code {
    pub fn from_raw(code: i32) -> Code {
        match code {
            1 => Code::InvalidArgument,
            2 => Code::NotFound,
            3 => Code::AlreadyExists,
            4 => Code::Io,
            5 => Code::Parse,
            6 => Code::Unavailable,
            7 => Code::Cancelled,
            8 => Code::DeadlineExceeded,
            9 => Code::Internal,
            10 => Code::Unimplemented,
            11 => Code::OutOfMemory,
            12 => Code::Aborted,
            13 => Code::PermissionDenied,
            14 => Code::FailedPrecondition,
            other => Code::Unknown(other),
        }
    }
}

/// An error of a distri call: the code and the message of distri_last_error().
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: Code,
    message: String,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }
    pub fn code(&self) -> Code {
        self.code
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
