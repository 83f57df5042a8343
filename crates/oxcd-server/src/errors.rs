//! Server-level errors with etcd's exact messages; the API layer maps them to gRPC statuses.

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ServerError {
    #[error("etcdserver: request timed out")]
    Timeout,
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("{0}")]
    Kv(#[from] oxcd_mvcc::KvError),
    #[error("{0}")]
    Lease(#[from] crate::lease::LeaseError),
    #[error("etcdserver: member ID already exist")]
    MemberExist,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExist,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStarted,
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    #[error("etcdserver: request timed out, leader transfer took too long")]
    LeaderTransferTimeout,
    #[error("etcdserver: {0}")]
    Internal(String),
}

impl ServerError {
    pub fn code(&self) -> tonic_code::Code {
        use tonic_code::Code;
        match self {
            ServerError::Timeout
            | ServerError::NoLeader
            | ServerError::Stopped
            | ServerError::LeaderChanged => Code::Unavailable,
            ServerError::TooManyRequests | ServerError::NoSpace => Code::ResourceExhausted,
            ServerError::MemberExist
            | ServerError::PeerUrlExist
            | ServerError::MemberNotLearner
            | ServerError::LearnerNotReady
            | ServerError::TooManyLearners
            | ServerError::NotEnoughStarted
            | ServerError::NotLeader
            | ServerError::BadLeaderTransferee => Code::FailedPrecondition,
            ServerError::LeaderTransferTimeout => Code::DeadlineExceeded,
            ServerError::MemberNotFound => Code::NotFound,
            ServerError::MemberBadUrls => Code::InvalidArgument,
            ServerError::RequestTooLarge => Code::InvalidArgument,
            ServerError::Kv(e) => e.code(),
            ServerError::Lease(e) => e.code(),
            ServerError::Internal(_) => Code::Internal,
        }
    }
}

/// gRPC codes, re-exported so that callers need not depend on tonic directly.
pub mod tonic_code {
    pub use tonic::Code;
}
