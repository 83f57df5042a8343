//! A connection wrapper that lets a burst of responses leave in one socket write.
//!
//! When the applier finishes a batch it completes many requests at once. Each response's task
//! hands its frames to the connection and wakes the connection's task, which tokio runs next
//! (its LIFO slot), so the connection wrote after every single response: one `writev` per
//! request, each a full trip through the loopback TCP stack. Here the first write of a flush
//! yields once (`tokio::task::yield_now`, which tokio defers until the worker's other ready
//! tasks have run), so the responses completed meanwhile join the same write. With nothing
//! else ready the yield returns at once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

type YieldNow = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

pub struct CoalescingIo<T> {
    inner: T,
    /// The yield of the flush under way, while it is pending.
    pending_yield: Option<YieldNow>,
    /// This flush has yielded already: its writes go straight through until it completes.
    yielded: bool,
}

impl<T> CoalescingIo<T> {
    pub fn new(inner: T) -> Self {
        CoalescingIo {
            inner,
            pending_yield: None,
            yielded: false,
        }
    }

    /// Yields once per flush, before its first write.
    fn poll_yield(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        let y = self
            .pending_yield
            .get_or_insert_with(|| Box::pin(tokio::task::yield_now()));
        ready!(y.as_mut().poll(cx));
        self.pending_yield = None;
        self.yielded = true;
        Poll::Ready(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescingIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescingIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_yield(cx));
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_yield(cx));
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = ready!(Pin::new(&mut this.inner).poll_flush(cx));
        // The next flush yields again.
        this.yielded = false;
        Poll::Ready(r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncWriteExt;

    /// Each write: whether the ready task had run by then, and the bytes.
    type Writes = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

    /// Records what it is given, and whether `ready_task_ran` was set at each write.
    #[derive(Default)]
    struct Probe {
        ready_task_ran: Arc<AtomicBool>,
        writes: Writes,
    }

    impl AsyncWrite for Probe {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let ran = self.ready_task_ran.load(Ordering::SeqCst);
            self.writes.lock().unwrap().push((ran, buf.to_vec()));
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_flush_lets_the_ready_tasks_run_before_its_first_write() {
        let probe = Probe::default();
        let (ran, writes) = (probe.ready_task_ran.clone(), probe.writes.clone());
        let mut io = CoalescingIo::new(probe);
        for burst in [&b"first"[..], b"second"] {
            ran.store(false, Ordering::SeqCst);
            let r = ran.clone();
            tokio::spawn(async move { r.store(true, Ordering::SeqCst) });
            io.write_all(burst).await.unwrap();
            io.write_all(b"+more").await.unwrap();
            io.flush().await.unwrap();
        }
        let writes = writes.lock().unwrap().clone();
        let want: Vec<(bool, Vec<u8>)> = [&b"first"[..], b"+more", b"second", b"+more"]
            .iter()
            .map(|w| (true, w.to_vec()))
            .collect();
        assert_eq!(writes, want);
    }
}
