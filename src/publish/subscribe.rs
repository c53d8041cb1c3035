//! `pocketses subscribe`: print a daemon's line stream, a friendlier telnet. \[io\]
//!
//! Blocking std I/O on purpose: one socket, one reader, no runtime needed.
//! It never writes to the daemon.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::error::describe_io as describe;

/// Longest line printed: a snapshot is a few kB; anything this long is not pocketses.
pub const MAX_LINE: usize = 16 << 20;
/// How long to wait for the first line: a daemon sends its latest snapshot at once on connect.
pub const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Seconds to wait for the first line before giving up (a daemon sends one at once).
    #[arg(long, value_name = "SECONDS", default_value_t = FIRST_LINE_TIMEOUT.as_secs())]
    pub timeout: u64,
}

/// How reading one line ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line (without its newline).
    Whole,
    /// The peer closed the connection; what was read of a last line, if anything, is in the buffer.
    End,
    /// More than the limit without a newline.
    TooLong,
}

/// Reads one line of at most `max` bytes into `buf` (cleared first). \[io on `reader` only\]
///
/// # Errors
/// The reader's errors.
pub fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    reader.by_ref().take(limit).read_until(b'\n', buf)?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Line::Whole);
    }
    Ok(if buf.len() > max { Line::TooLong } else { Line::End })
}

/// Why the first line shows this is not a pocketses stream, if it does. \[pure\]
pub fn not_a_stream(first: &[u8]) -> Option<String> {
    if first.starts_with(b"{") {
        return None;
    }
    let shown: String = String::from_utf8_lossy(&first[..first.len().min(60)]).into_owned();
    if first.starts_with(b"HTTP/") {
        return Some(format!("it answered like an HTTP server ({shown:?}); for HTTP use curl PATH /v1/metrics/stream"));
    }
    Some(format!("it does not speak pocketses' line stream (first line: {shown:?})"))
}

/// `HOST:PORT` as given, or `HOST` with the default port. \[pure\]
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

/// One received line as it should be printed. \[pure\]
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
    let wait = Duration::from_secs(args.timeout.max(1));
    stream.set_read_timeout(Some(wait)).context("cannot set a read timeout")?;
    let mut reader = BufReader::new(stream);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        let end = match read_line(&mut reader, &mut buf, MAX_LINE) {
            Ok(end) => end,
            Err(err)
                if first
                    && matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
            {
                anyhow::bail!(
                    "cannot read from pocketses at {address}: no line within {}s (a pocketses \
                     daemon sends one at once; is this its HTTP port? the stream is on port 8888 \
                     by default, and HTTP is read with curl http://HOST:9188/v1/metrics/stream)",
                    wait.as_secs()
                )
            }
            Err(err) => {
                anyhow::bail!("cannot read from pocketses at {address}: {}", describe(&err))
            }
        };
        match end {
            Line::TooLong => anyhow::bail!(
                "cannot read from pocketses at {address}: a line is longer than {} MiB; stopped",
                MAX_LINE >> 20
            ),
            Line::End if buf.is_empty() => return Ok(ExitCode::SUCCESS),
            Line::End | Line::Whole => {}
        }
        if first {
            if let Some(why) = not_a_stream(&buf) {
                anyhow::bail!("cannot read from pocketses at {address}: {why}");
            }
            // After the first line, lines come once per interval, which may be a day.
            reader.get_ref().set_read_timeout(None).context("cannot clear the read timeout")?;
            first = false;
        }
        let line = String::from_utf8_lossy(&buf);
        let text = render(&line, args.pretty)
            .with_context(|| format!("cannot pretty-print line from {address}"))?;
        if let Err(err) = writeln!(out, "{text}").and_then(|()| out.flush()) {
            // `pocketses subscribe | head` is a normal way to stop.
            if err.kind() == io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(err).context("cannot write to stdout");
        }
        if end == Line::End {
            return Ok(ExitCode::SUCCESS);
        }
    }
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
    fn lines_are_bounded() {
        let mut buf = Vec::new();
        let mut input = io::Cursor::new(b"{\"a\":1}\r\nxxxxxxxxxx\nabc".to_vec());
        assert_eq!(read_line(&mut input, &mut buf, 100).unwrap(), Line::Whole);
        assert_eq!(buf, b"{\"a\":1}");
        assert_eq!(read_line(&mut input, &mut buf, 5).unwrap(), Line::TooLong);
        assert_eq!(buf.len(), 6, "stops reading one byte past the limit");
        let mut input = io::Cursor::new(b"abc".to_vec());
        assert_eq!(read_line(&mut input, &mut buf, 5).unwrap(), Line::End);
        assert_eq!(buf, b"abc");
        assert_eq!(read_line(&mut input, &mut buf, 5).unwrap(), Line::End);
        assert!(buf.is_empty());
    }

    #[test]
    fn recognises_what_is_not_a_stream() {
        assert_eq!(not_a_stream(b"{\"schema\":\"x\"}"), None);
        assert!(not_a_stream(b"HTTP/1.1 400 Bad Request").unwrap().contains("HTTP server"));
        assert!(not_a_stream(b"SSH-2.0-OpenSSH_9.2").unwrap().contains("SSH-2.0"));
    }

    #[test]
    fn renders_raw_and_pretty() {
        assert_eq!(render("{\"a\":1}", false).unwrap(), "{\"a\":1}");
        assert_eq!(render("{\"a\":1}", true).unwrap(), "{\n  \"a\": 1\n}");
        assert!(render("not json", true).is_err());
    }
}
