//! The HTTP/2 server against hostile byte streams: whatever frames follow the preface, the
//! connection ends (or answers) without a panic and without waiting forever.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::*;
use crate::Hub;

/// A small deterministic generator (xorshift), so that a failure replays.
struct Bytes64(u64);

impl Bytes64 {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A frame of a random type (mostly known ones), flags, stream (mostly small odd numbers)
/// and payload.
fn random_frame(rng: &mut Bytes64) -> Vec<u8> {
    let kind = (rng.next() % 11) as u8;
    let flags = rng.next() as u8;
    let stream = match rng.next() % 4 {
        0 => 0,
        1 => 1,
        2 => 3,
        _ => (rng.next() % 16) as u32,
    };
    let len = (rng.next() % 40) as usize;
    let mut frame = vec![0, 0, len as u8, kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend((0..len).map(|_| rng.next() as u8));
    frame
}

#[tokio::test]
async fn random_frames_end_the_connection_without_a_panic() {
    let hub = Hub::builder().anonymous(true).build().expect("hub");
    let router = hub.router();
    let (_stop, mut stopped) = watch::channel(false);
    for seed in 1..300u64 {
        let mut rng = Bytes64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut wire = PREFACE.to_vec();
        wire.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
        for _ in 0..1 + rng.next() % 8 {
            wire.extend(random_frame(&mut rng));
        }
        let write = async move {
            let mut client = client;
            let _ = client.write_all(&wire).await;
            let _ = client.shutdown().await;
            // Keep reading what the hub sends until it closes, so that it never blocks.
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink).await;
        };
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let serve = serve(server, peer, &router, &mut stopped, 8192);
        tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(write, serve);
        })
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: the connection did not end"));
    }
}
