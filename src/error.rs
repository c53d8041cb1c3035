//! Error text shared by every command: I/O errors in snapd's grammar. \[pure\]

use std::io;

/// An I/O error in snapd's grammar: "connection refused", not "Connection refused (os error 111)".
pub fn describe_io(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_errors_in_lowercase_without_the_code() {
        let err = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(describe_io(&err), "connection refused");
        let err = io::Error::other("Already lowercase? No");
        assert_eq!(describe_io(&err), "already lowercase? No");
    }
}
