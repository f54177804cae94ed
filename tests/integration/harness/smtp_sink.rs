//! A minimal real SMTP server on 127.0.0.1:0 (plain, no TLS, no AUTH) speaking EHLO/HELO,
//! MAIL, RCPT, DATA, RSET, NOOP and QUIT, recording each message it accepts.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One accepted message.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-unstuffed, CRLF line ends).
    pub data: String,
}

#[derive(Default)]
struct Shared {
    mails: Mutex<Vec<Mail>>,
    arrived: Condvar,
}

pub(crate) struct SmtpSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SmtpSink {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the SMTP sink");
        let addr = listener.local_addr().expect("the SMTP sink's address");
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let serving = accepting.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &serving);
                });
            }
        });
        SmtpSink { addr, shared }
    }

    /// The messages accepted so far.
    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// The messages once there are at least `n`, waiting up to 30 s (a safety net).
    pub(crate) fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut mails = self.shared.mails.lock().unwrap();
        while mails.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{n} mail(s) never came; got {:#?}", *mails);
            mails = self.shared.arrived.wait_timeout(mails, left).unwrap().0;
        }
        mails.clone()
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 sink ESMTP ready\r\n")?;
    let mut mail = Mail::default();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => out.write_all(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?,
            "HELO" => out.write_all(b"250 sink\r\n")?,
            "MAIL" => {
                mail = Mail {
                    from: address(&command),
                    ..Mail::default()
                };
                out.write_all(b"250 ok\r\n")?;
            }
            "RCPT" => {
                mail.to.push(address(&command));
                out.write_all(b"250 ok\r\n")?;
            }
            "DATA" => {
                out.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                mail.data = data;
                shared.mails.lock().unwrap().push(std::mem::take(&mut mail));
                shared.arrived.notify_all();
                out.write_all(b"250 queued\r\n")?;
            }
            "RSET" | "NOOP" => out.write_all(b"250 ok\r\n")?,
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"502 not implemented\r\n")?,
        }
    }
}

/// The address between `<` and `>` of `MAIL FROM:<a@b> …` / `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}
