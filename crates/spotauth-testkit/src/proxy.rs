//! [`DbProxy`]: a TCP proxy in front of the MariaDB server that counts the commands an app
//! sends (its own statement counter, not disturbed by other tests on the same server) and can
//! make the database unreachable and reachable again, without stopping the shared server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::TestDb;

/// A proxy to one test database. Point the app's `DATABASE_URL` at [`DbProxy::url`].
#[derive(Debug)]
pub struct DbProxy {
    url: String,
    commands: Arc<AtomicU64>,
    down: watch::Sender<bool>,
    accepting: Arc<AtomicBool>,
}

impl DbProxy {
    /// Listens on a free loopback port and forwards to `db`'s server (plain TCP: the test
    /// URLs do not ask for TLS, so the MySQL packets can be read).
    pub async fn start(db: &TestDb) -> Self {
        let target = url::Url::parse(db.url()).unwrap();
        let upstream = format!("{}:{}", target.host_str().unwrap(), target.port().unwrap_or(3306));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut url = target.clone();
        url.set_port(Some(listener.local_addr().unwrap().port())).unwrap();
        // mysql_async otherwise moves a connection to 127.0.0.1 onto the server's Unix socket,
        // past the proxy.
        url.query_pairs_mut().append_pair("prefer_socket", "false");
        let commands = Arc::new(AtomicU64::new(0));
        let (down, _) = watch::channel(false);
        let accepting = Arc::new(AtomicBool::new(true));
        let (counted, gate, open) = (commands.clone(), down.clone(), accepting.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !open.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (upstream, counted, cut) = (upstream.clone(), counted.clone(), gate.subscribe());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, counted, cut).await;
                    }
                });
            }
        });
        DbProxy { url: url.to_string(), commands, down, accepting }
    }

    /// The database URL through the proxy.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Commands (statements, pings, prepares…) sent through the proxy so far: every client
    /// packet that starts a command exchange (sequence id 0).
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::SeqCst)
    }

    /// The database becomes unreachable: every open connection is cut, new ones are refused.
    pub fn go_down(&self) {
        self.accepting.store(false, Ordering::SeqCst);
        self.down.send_replace(true);
    }

    /// The database is reachable again.
    pub fn come_back(&self) {
        self.down.send_replace(false);
        self.accepting.store(true, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, server: TcpStream, commands: Arc<AtomicU64>, mut cut: watch::Receiver<bool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut packets = PacketReader::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            commands.fetch_add(packets.commands_in(&buf[..n]), Ordering::SeqCst);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    let cut_off = async {
        while !*cut.borrow_and_update() {
            if cut.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
        () = cut_off => {}
    }
}

/// Splits the client's byte stream into MySQL packets (3-byte length, 1-byte sequence id).
#[derive(Default)]
struct PacketReader {
    header: Vec<u8>,
    body_left: usize,
}

impl PacketReader {
    /// How many packets starting in `bytes` have sequence id 0 (a new command).
    fn commands_in(&mut self, mut bytes: &[u8]) -> u64 {
        let mut n = 0;
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                bytes = &bytes[take..];
                continue;
            }
            let take = (4 - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.header.len() == 4 {
                let len = usize::from(self.header[0])
                    | (usize::from(self.header[1]) << 8)
                    | (usize::from(self.header[2]) << 16);
                if self.header[3] == 0 {
                    n += 1;
                }
                self.body_left = len;
                self.header.clear();
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_packets_with_sequence_zero_across_reads() {
        let mut r = PacketReader::default();
        // Handshake response (seq 1), then COM_QUERY "SELECT 1" (seq 0) split over two reads.
        let mut stream = vec![3, 0, 0, 1, 9, 9, 9];
        stream.extend([9, 0, 0, 0, 3]);
        stream.extend(b"SELECT 1");
        assert_eq!(r.commands_in(&stream[..9]), 0, "the query's header is not complete yet");
        assert_eq!(r.commands_in(&stream[9..]), 1);
        assert_eq!(r.commands_in(&[1, 0, 0, 0, 14]), 1, "COM_PING");
    }
}
