//! Client of the adb server (smart-socket protocol). (STUB — being written.)
