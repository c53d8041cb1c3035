//! `pocketses subscribe`: print a daemon's line stream, a friendlier telnet. [io]
//!
//! Blocking std I/O on purpose: one socket, one reader, no runtime needed.
//! It never writes to the daemon.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::ExitCode;

use anyhow::Context;

/// Where `pocketses subscribe` connects when given no address.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8888";

/// Flags of `pocketses subscribe`.
#[derive(Debug, clap::Args)]
pub struct SubscribeArgs {
    /// Daemon to connect to, HOST:PORT (the port defaults to 8888 when only a host is given).
    #[arg(default_value = DEFAULT_ADDRESS)]
    pub address: String,
    /// Pretty-print each JSON object instead of printing the lines as received.
    #[arg(long, conflicts_with = "raw")]
    pub pretty: bool,
    /// Print the lines exactly as received (the default).
    #[arg(long)]
    pub raw: bool,
}

/// `HOST:PORT` as given, or `HOST` with the default port. [pure]
pub fn with_default_port(address: &str) -> String {
    let has_port = match address.rfind(']') {
        // [v6]:port
        Some(end) => address[end..].contains(':'),
        // A bare IPv6 address has several colons and no port.
        None => address.matches(':').count() == 1,
    };
    if has_port {
        address.to_string()
    } else if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:8888")
    } else {
        format!("{address}:8888")
    }
}

/// An I/O error in snapd's grammar: "connection refused", not "Connection refused (os error 111)". [pure]
pub fn describe(err: &io::Error) -> String {
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

/// One received line as it should be printed. [pure]
///
/// # Errors
/// With `pretty`, when the line is not JSON.
pub fn render(line: &str, pretty: bool) -> Result<String, serde_json::Error> {
    if !pretty {
        return Ok(line.to_string());
    }
    let value: serde_json::Value = serde_json::from_str(line)?;
    serde_json::to_string_pretty(&value)
}

/// Connects and prints every line until the daemon closes the stream.
///
/// # Errors
/// When the daemon cannot be reached or the stream breaks.
pub fn main(args: SubscribeArgs) -> anyhow::Result<ExitCode> {
    let address = with_default_port(&args.address);
    let stream = TcpStream::connect(&address).map_err(|err| {
        anyhow::anyhow!("cannot connect to pocketses at {address}: {}", describe(&err))
    })?;
    let reader = BufReader::new(stream);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for line in reader.lines() {
        let line = line.map_err(|err| {
            anyhow::anyhow!("cannot read from pocketses at {address}: {}", describe(&err))
        })?;
        let text = render(&line, args.pretty)
            .with_context(|| format!("cannot pretty-print line from {address}"))?;
        if let Err(err) = writeln!(out, "{text}").and_then(|()| out.flush()) {
            // `pocketses subscribe | head` is a normal way to stop.
            if err.kind() == io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(err).context("cannot write to stdout");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_port() {
        for (input, want) in [
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("localhost", "localhost:8888"),
            ("device.local:1", "device.local:1"),
            ("[::1]:9000", "[::1]:9000"),
            ("[::1]", "[::1]:8888"),
            ("::1", "[::1]:8888"),
        ] {
            assert_eq!(with_default_port(input), want, "{input}");
        }
    }

    #[test]
    fn describes_errors_in_lowercase() {
        let err = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(describe(&err), "connection refused");
    }

    #[test]
    fn renders_raw_and_pretty() {
        assert_eq!(render("{\"a\":1}", false).unwrap(), "{\"a\":1}");
        assert_eq!(render("{\"a\":1}", true).unwrap(), "{\n  \"a\": 1\n}");
        assert!(render("not json", true).is_err());
    }
}
