//! A pool's control channel: one SOCK_SEQPACKET socket pair per prototype,
//! so every datagram is one whole message and a short read cannot split it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::message::{DecodeError, Message, MAX_MESSAGE};

/// Why a send or a receive failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot create the control channel: {0}")]
    Create(#[source] corral_sys::SysError),
    #[error("'{verb}' must carry {expected} descriptor(s), not {got}")]
    Attachments {
        verb: String,
        expected: usize,
        got: usize,
    },
    #[error("cannot send on the control channel: {0}")]
    Send(#[source] corral_sys::SysError),
    #[error("cannot read the control channel: {0}")]
    Recv(#[source] std::io::Error),
    #[error("{0}")]
    Decode(#[from] DecodeError),
}

/// One end of a control channel.
#[derive(Debug)]
pub struct Channel(OwnedFd);

/// What one receive found.
#[derive(Debug)]
pub enum Received<M> {
    /// A message and the descriptors it carried (already checked in number).
    Message(M, Vec<OwnedFd>),
    /// The other end is closed: its process exited.
    Closed,
    /// Nothing waiting (non-blocking channel).
    Empty,
}

impl Channel {
    /// A connected pair, both ends close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = corral_sys::socket::seqpacket_pair().map_err(ChannelError::Create)?;
        Ok((Channel(a), Channel(b)))
    }

    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel(fd)
    }

    pub fn into_fd(self) -> OwnedFd {
        self.0
    }

    pub fn set_nonblocking(&self, on: bool) -> Result<(), ChannelError> {
        corral_sys::socket::set_nonblocking(self.0.as_raw_fd(), on).map_err(ChannelError::Send)
    }

    /// Send `msg` with exactly the descriptors it says it carries.
    pub fn send<M: Message + std::fmt::Debug>(
        &self,
        msg: &M,
        fds: &[RawFd],
    ) -> Result<(), ChannelError> {
        if fds.len() != msg.descriptors() {
            return Err(ChannelError::Attachments {
                verb: format!("{msg:?}"),
                expected: msg.descriptors(),
                got: fds.len(),
            });
        }
        corral_sys::socket::send_with_fds(self.0.as_raw_fd(), &msg.encode(), fds)
            .map_err(ChannelError::Send)
    }

    /// Receive one message. A datagram that does not decode is an error and
    /// its descriptors are closed; the channel itself stays usable.
    pub fn recv<M: Message>(&self) -> Result<Received<M>, ChannelError> {
        // One byte more than any valid message, so an oversized datagram
        // is seen as such instead of silently truncated to a valid one.
        let mut buf = [0u8; MAX_MESSAGE + 1];
        loop {
            match corral_sys::socket::recv_with_fds(self.0.as_raw_fd(), &mut buf) {
                Ok((0, fds)) if fds.is_empty() => return Ok(Received::Closed),
                Ok((n, fds)) => {
                    let msg = M::decode(&buf[..n], fds.len())?;
                    return Ok(Received::Message(msg, fds));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(Received::Empty),
                Err(e) => return Err(ChannelError::Recv(e)),
            }
        }
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{FromPrototype, ToPrototype};

    #[test]
    fn messages_and_descriptors_cross_a_real_pair() {
        let (master, proto) = Channel::pair().unwrap();
        master.send(&ToPrototype::Spawn { slot: 7 }, &[]).unwrap();
        match proto.recv::<ToPrototype>().unwrap() {
            Received::Message(ToPrototype::Spawn { slot: 7 }, fds) => assert!(fds.is_empty()),
            other => panic!("{other:?}"),
        }
        let (r, w) = std::io::pipe().unwrap();
        let (r, w): (OwnedFd, OwnedFd) = (r.into(), w.into());
        let started = FromPrototype::Started {
            pid: 4242,
            slot: 7,
            captured: true,
        };
        proto
            .send(&started, &[r.as_raw_fd(), w.as_raw_fd()])
            .unwrap();
        match master.recv::<FromPrototype>().unwrap() {
            Received::Message(m, fds) => {
                assert_eq!(m, started);
                assert_eq!(fds.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        master.set_nonblocking(true).unwrap();
        assert!(matches!(
            master.recv::<FromPrototype>().unwrap(),
            Received::Empty
        ));
        drop(proto);
        assert!(matches!(
            master.recv::<FromPrototype>().unwrap(),
            Received::Closed
        ));
    }

    #[test]
    fn refuses_to_send_the_wrong_attachments() {
        let (master, _proto) = Channel::pair().unwrap();
        assert!(matches!(
            master.send(&ToPrototype::ReopenAccessLog, &[]),
            Err(ChannelError::Attachments { .. })
        ));
    }

    #[test]
    fn garbage_is_an_error_and_the_channel_survives() {
        let (master, proto) = Channel::pair().unwrap();
        corral_sys::socket::send_with_fds(proto.as_raw_fd(), b"started 1 1", &[]).unwrap();
        proto
            .send(&FromPrototype::Ready { layout: vec![] }, &[])
            .unwrap();
        assert!(matches!(
            master.recv::<FromPrototype>(),
            Err(ChannelError::Decode(_))
        ));
        assert!(matches!(
            master.recv::<FromPrototype>().unwrap(),
            Received::Message(FromPrototype::Ready { .. }, _)
        ));
    }
}
