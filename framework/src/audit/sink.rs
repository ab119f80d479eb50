//! Where a device's lines go: a file (appended, one `write` per line so lines of concurrent
//! requests never interleave), the server's standard output, or a TCP/UDP peer.
//!
//! A sink opens lazily at its first write and, when a write fails, re-opens once and tries
//! again (Vault's file and socket devices do the same); the error of the second try is the
//! device's failure. Files are opened non-blocking, so a FIFO without a reader fails at once
//! instead of hanging the request. A TCP connection whose peer has closed it is noticed
//! before the write (a non-blocking peek sees the end of the stream) and re-made.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::device::Target;

/// An open (or not yet opened) destination of one device.
pub(crate) struct Sink {
    target: Target,
    state: Arc<Mutex<Conn>>,
}

#[derive(Default)]
enum Conn {
    #[default]
    Closed,
    File(File),
    Tcp(TcpStream),
    Udp(UdpSocket),
}

fn poisoned() -> std::io::Error {
    std::io::Error::other("audit sink lock poisoned")
}

impl Sink {
    pub(crate) fn new(target: Target) -> Sink {
        Sink {
            target,
            state: Arc::new(Mutex::new(Conn::Closed)),
        }
    }

    /// Writes `line` and a newline. Socket writes run on the blocking pool (a stalled peer
    /// holds a thread for at most `write_timeout`, not the server's workers).
    pub(crate) async fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        match &self.target {
            Target::Discard => Ok(()),
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&buf)?;
                out.flush()
            }
            Target::File { .. } => write_with_retry(&self.target, &self.state, &buf),
            Target::Socket { .. } => {
                let (target, state) = (self.target.clone(), self.state.clone());
                match tokio::task::spawn_blocking(move || write_with_retry(&target, &state, &buf))
                    .await
                {
                    Ok(result) => result,
                    Err(e) => Err(std::io::Error::other(e)),
                }
            }
        }
    }
}

fn write_with_retry(target: &Target, state: &Mutex<Conn>, buf: &[u8]) -> std::io::Result<()> {
    let mut conn = state.lock().map_err(|_| poisoned())?;
    if let Conn::Tcp(stream) = &*conn {
        if peer_closed(stream) {
            *conn = Conn::Closed;
        }
    }
    if matches!(*conn, Conn::Closed) {
        *conn = open(target)?;
    }
    if write_once(&mut conn, buf).is_ok() {
        return Ok(());
    }
    *conn = Conn::Closed;
    *conn = open(target)?;
    write_once(&mut conn, buf).inspect_err(|_| *conn = Conn::Closed)
}

fn write_once(conn: &mut Conn, buf: &[u8]) -> std::io::Result<()> {
    match conn {
        Conn::File(f) => f.write_all(buf),
        Conn::Tcp(s) => s.write_all(buf),
        Conn::Udp(s) => s.send(buf).map(|_| ()),
        Conn::Closed => Err(std::io::Error::other("not open")),
    }
}

/// True when the peer has closed the connection (or it failed): a non-blocking peek sees
/// the end of the stream or an error. Data the peer sent is left alone.
fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut probe = [0u8; 1];
    let closed = match stream.peek(&mut probe) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    closed || stream.set_nonblocking(false).is_err()
}

/// Opens the target. Files: parent directories are created (mode 0700), the file is created
/// with the device's mode and appended to; a symbolic link (`O_NOFOLLOW`), a directory, a FIFO
/// without a reader, or any other path that cannot be opened for writing is an error.
fn open(target: &Target) -> std::io::Result<Conn> {
    match target {
        Target::Stdout | Target::Discard => Ok(Conn::Closed),
        Target::File { path, mode } => open_file(path, *mode).map(Conn::File),
        Target::Socket {
            address,
            udp: false,
            write_timeout,
        } => {
            let mut last = None;
            for addr in address.to_socket_addrs()? {
                match TcpStream::connect_timeout(&addr, *write_timeout) {
                    Ok(stream) => {
                        stream.set_write_timeout(Some(*write_timeout))?;
                        stream.set_nodelay(true)?;
                        return Ok(Conn::Tcp(stream));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                std::io::Error::new(ErrorKind::NotFound, format!("{address}: no address"))
            }))
        }
        Target::Socket {
            address,
            udp: true,
            write_timeout,
        } => {
            let addr = address.to_socket_addrs()?.next().ok_or_else(|| {
                std::io::Error::new(ErrorKind::NotFound, format!("{address}: no address"))
            })?;
            let local = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = UdpSocket::bind(local)?;
            socket.set_write_timeout(Some(*write_timeout))?;
            socket.connect(addr)?;
            Ok(Conn::Udp(socket))
        }
    }
}

fn open_file(path: &Path, mode: u32) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
}
