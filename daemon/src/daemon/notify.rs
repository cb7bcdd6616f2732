//! systemd readiness notifications (`Type=notify`): a datagram to
//! `$NOTIFY_SOCKET`. Silent when the variable is unset (not under systemd).

use std::os::unix::net::UnixDatagram;

fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = (|| -> std::io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // An abstract socket (Linux): `@` stands for the leading NUL.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            socket.send_to(state.as_bytes(), &path)?;
        }
        Ok(())
    })();
    if let Err(error) = result {
        tracing::warn!(%error, "cannot notify systemd");
    }
}

/// The daemon is serving.
pub(super) fn ready() {
    send("READY=1\nSTATUS=serving");
}

/// The daemon is shutting down.
pub(super) fn stopping() {
    send("STOPPING=1\nSTATUS=stopping");
}
