//! The sync protocol (`sync:` service) for push/pull/stat/list.
//! (STUB — being written.)
