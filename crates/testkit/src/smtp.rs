//! A small SMTP server on loopback that keeps every message it accepts, for tests of the e-mail
//! channel. It can answer "try again later" (451) to the next messages, to test retries, and
//! "no such mailbox" (550) to chosen recipients, to test permanent failures.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-stuffing undone).
    pub data: String,
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<ReceivedMail>>,
    refuse_next: AtomicUsize,
    rejected_recipients: Mutex<Vec<String>>,
    rejections: AtomicUsize,
}

/// The running server; it stops when dropped (its task ends with the test's runtime).
#[derive(Clone)]
pub struct SmtpSink {
    address: SocketAddr,
    state: Arc<State>,
}

impl SmtpSink {
    pub async fn start() -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(State::default());
        let accepting = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = accepting.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &state).await;
                });
            }
        });
        Ok(SmtpSink { address, state })
    }

    /// `smtp://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Every message accepted so far.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state
            .received
            .lock()
            .map(|received| received.clone())
            .unwrap_or_default()
    }

    /// The text (headers and body, quoted-printable soft line breaks undone) of every message
    /// sent to `address` so far, oldest first.
    pub fn texts_to(&self, address: &str) -> Vec<String> {
        self.received()
            .into_iter()
            .filter(|mail| mail.to.iter().any(|to| to == address))
            .map(|mail| mail.data.replace("=\n", ""))
            .collect()
    }

    /// Answers 550 (permanent failure: no such mailbox) to every `RCPT TO` naming `address`.
    pub fn reject_recipient(&self, address: &str) {
        if let Ok(mut rejected) = self.state.rejected_recipients.lock() {
            rejected.push(address.to_string());
        }
    }

    /// How many times a `RCPT TO` was refused with 550 so far.
    pub fn rejections(&self) -> usize {
        self.state.rejections.load(Ordering::SeqCst)
    }

    /// Answers 451 (temporary failure) to the next `count` messages.
    pub fn refuse_next(&self, count: usize) {
        self.state.refuse_next.store(count, Ordering::SeqCst);
    }
}

async fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write
                .write_all(b"250-sink.test\r\n250 8BITMIME\r\n")
                .await?;
        } else if upper.starts_with("MAIL FROM:") {
            let refused = state
                .refuse_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refused {
                write.write_all(b"451 4.3.0 try again later\r\n").await?;
                continue;
            }
            from = line[10..].trim().trim_matches(['<', '>']).to_string();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let recipient = line[8..].trim().trim_matches(['<', '>']).to_string();
            let rejected = state
                .rejected_recipients
                .lock()
                .map(|rejected| rejected.contains(&recipient))
                .unwrap_or(false);
            if rejected {
                state.rejections.fetch_add(1, Ordering::SeqCst);
                write
                    .write_all(b"550 5.1.1 no such mailbox here\r\n")
                    .await?;
                continue;
            }
            to.push(recipient);
            write.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                let line = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(line);
                data.push('\n');
            }
            if let Ok(mut received) = state.received.lock() {
                received.push(ReceivedMail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                });
            }
            write.write_all(b"250 OK queued\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP and the rest.
            write.write_all(b"250 OK\r\n").await?;
        }
    }
    Ok(())
}
