//! When bytes reached a subscriber's socket, as the kernel saw it (`SO_TIMESTAMPNS`), apart
//! from when the load generator got around to reading them.
//!
//! The fan-out's load generator shares the server's cores and runs at the delivery's low
//! priority, standing in for dashboards on other machines. When the cores are saturated it reads
//! late, and a lag measured at the read counts the generator's own wait. The kernel stamps every
//! segment as it lands in the socket's receive queue; on loopback that is the moment the server's
//! write returned. [`Stamped`] reads a TCP stream with `recvmsg` and keeps the stamp of the last
//! segment each read consumed ([`Arrivals`]), so a message's arrival is never earlier than its
//! last byte's (a read that takes two segments gives the earlier one the later stamp: the
//! figure errs on the late side).

use std::{
    io::{self, IoSliceMut},
    os::fd::AsRawFd,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    task::{Context, Poll, ready},
};

use chrono::{DateTime, Utc};
use nix::sys::{
    socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt},
    time::TimeSpec,
};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// The kernel's receive time of the last segment read from a [`Stamped`] stream.
#[derive(Clone, Default)]
pub struct Arrivals(Arc<AtomicI64>);

impl Arrivals {
    /// When the bytes of the latest read arrived; `None` when it was not stamped (before any
    /// read, or before the kernel switched stamping on).
    pub fn last(&self) -> Option<DateTime<Utc>> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(DateTime::from_timestamp_nanos(nanos)),
        }
    }

    /// Notes a read's stamp; an unstamped read clears it (never an earlier read's stamp).
    fn note(&self, stamp: Option<TimeSpec>) {
        let nanos = stamp.map_or(0, |s| s.tv_sec() * 1_000_000_000 + s.tv_nsec());
        self.0.store(nanos, Ordering::Relaxed);
    }
}

/// A TCP stream whose reads note their bytes' arrival in [`Arrivals`].
pub struct Stamped {
    inner: tokio::net::TcpStream,
    arrivals: Arrivals,
}

impl Stamped {
    /// Asks the kernel to stamp what `inner` receives. The first socket of the system to ask
    /// switches stamping on a moment later (the kernel defers it), so the very first bytes may
    /// come unstamped.
    pub fn new(inner: tokio::net::TcpStream) -> io::Result<(Self, Arrivals)> {
        setsockopt(&inner, sockopt::ReceiveTimestampns, &true)?;
        let arrivals = Arrivals::default();
        Ok((
            Self {
                inner,
                arrivals: arrivals.clone(),
            },
            arrivals,
        ))
    }

    /// One `recvmsg` into `buf`: the bytes read, and the stamp of the last segment they came in.
    fn receive(&self, buf: &mut [u8]) -> io::Result<(usize, Option<TimeSpec>)> {
        let mut control = nix::cmsg_space!(TimeSpec);
        let mut iov = [IoSliceMut::new(buf)];
        let message = recvmsg::<SockaddrStorage>(
            self.inner.as_raw_fd(),
            &mut iov,
            Some(&mut control),
            MsgFlags::empty(),
        )?;
        let stamp = message.cmsgs()?.find_map(|cmsg| match cmsg {
            ControlMessageOwned::ScmTimestampns(stamp) => Some(stamp),
            _ => None,
        });
        Ok((message.bytes, stamp))
    }
}

impl AsyncRead for Stamped {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.inner.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match this
                .inner
                .try_io(Interest::READABLE, || this.receive(unfilled))
            {
                Ok((read, stamp)) => {
                    this.arrivals.note(stamp);
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl AsyncWrite for Stamped {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_read_knows_when_its_bytes_arrived_not_when_it_ran() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        let (mut stamped, arrivals) = Stamped::new(client).expect("stamped");
        assert!(arrivals.last().is_none());
        // The kernel switches stamping on a moment after the first socket asks for it (a
        // deferred switch), so bytes sent at once may come unstamped: wait for a stamped read.
        let mut one = [0u8; 1];
        for _ in 0..200 {
            server.write_all(b"x").await.expect("write");
            stamped.read_exact(&mut one).await.expect("read");
            if arrivals.last().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(arrivals.last().is_some(), "the kernel never stamped a read");

        let before = Utc::now();
        server.write_all(b"hello").await.expect("write");
        let after = Utc::now();
        // Read well after the bytes came: the stamp is the arrival, not the read.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut buf = [0u8; 16];
        let read = stamped.read(&mut buf).await.expect("read");
        let read_at = Utc::now();
        assert_eq!(&buf[..read], b"hello");
        let arrived = arrivals.last().expect("a stamp");
        assert!(
            arrived >= before - chrono::Duration::milliseconds(1)
                && arrived <= after + chrono::Duration::milliseconds(1),
            "arrived {arrived}, written between {before} and {after}"
        );
        assert!(read_at - arrived >= chrono::Duration::milliseconds(190));

        stamped.write_all(b"back").await.expect("write back");
        let mut back = [0u8; 4];
        server.read_exact(&mut back).await.expect("read back");
        assert_eq!(&back, b"back");
    }
}
