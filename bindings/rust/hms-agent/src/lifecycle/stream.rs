//! Watch streams: a pull cursor over the library's stream, decoded one item at a time from
//! the batch the library returned (`Iterator`, and with the `tokio` feature a
//! `futures::Stream` that waits on the stream's readiness descriptor).

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{Code, Error};
use crate::ffi::{self, Buf};

use super::LifecycleEvent;

/// How a stream's items become values.
pub(crate) trait Item: Sized {
    fn decode(bytes: &[u8]) -> Result<Self, Error>;
    fn sequence(&self) -> u64;
}

impl Item for LifecycleEvent {
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        super::decode::event(bytes)
    }
    fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// The state shared by every kind of stream: the handle, the batch being read, the end.
pub(crate) struct RawStream<T> {
    handle: u64,
    closed: Arc<AtomicBool>,
    batch: Option<Buf>,
    pos: usize,
    done: bool,
    next_sequence: u64,
    #[cfg(feature = "tokio")]
    async_fd: Option<tokio::io::unix::AsyncFd<Fd>>,
    _item: PhantomData<fn() -> T>,
}

#[cfg(feature = "tokio")]
pub(crate) struct Fd(i32);

#[cfg(feature = "tokio")]
impl std::os::fd::AsRawFd for Fd {
    fn as_raw_fd(&self) -> i32 {
        self.0
    }
}

/// The outcome of asking the library for more.
enum Pull {
    Items,
    Nothing,
    End(Option<Error>),
}

impl<T: Item> RawStream<T> {
    pub(crate) fn new(handle: u64, from_sequence: u64) -> Self {
        RawStream {
            handle,
            closed: Arc::new(AtomicBool::new(false)),
            batch: None,
            pos: 0,
            done: false,
            next_sequence: from_sequence,
            #[cfg(feature = "tokio")]
            async_fd: None,
            _item: PhantomData,
        }
    }

    /// The next item of the current batch.
    fn take(&mut self) -> Option<Result<T, Error>> {
        let batch = self.batch.as_ref()?;
        let bytes = batch.as_slice();
        match ffi::next_item(bytes, &mut self.pos) {
            Some(Ok(range)) => {
                let item = T::decode(&bytes[range]);
                if let Ok(v) = &item {
                    self.next_sequence = self.next_sequence.max(v.sequence().saturating_add(1));
                }
                Some(item)
            }
            Some(Err(e)) => Some(Err(e)),
            None => {
                self.batch = None;
                self.pos = 0;
                None
            }
        }
    }

    fn pull(&mut self, timeout_ms: i32) -> Pull {
        match ffi::next(self.handle, timeout_ms, 0) {
            Ok(Some(batch)) => {
                self.batch = Some(batch);
                self.pos = 0;
                Pull::Items
            }
            Ok(None) => Pull::Nothing,
            Err(e) => {
                self.done = true;
                let e = self.ended(e);
                // Closed by us: the end, not an error.
                if e.code() == Code::Cancelled || self.closed.load(Ordering::Acquire) {
                    Pull::End(None)
                } else {
                    Pull::End(Some(e))
                }
            }
        }
    }

    /// The error that ended the stream, with the resume point: the library's, or (when the
    /// library gives none, as for a closed manager) the one after the last item delivered.
    fn ended(&mut self, e: Error) -> Error {
        match e.resume_sequence() {
            Some(seq) => {
                self.next_sequence = seq;
                e
            }
            None if self.next_sequence > 0 => e.with_resume(self.next_sequence),
            None => e,
        }
    }

    /// Blocks until an item comes, the stream ends, or `timeout` (None: forever) passes.
    pub(crate) fn next_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<T>, Error> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if let Some(item) = self.take() {
                return item.map(Some);
            }
            if self.done {
                return Ok(None);
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    left.as_millis().min(i32::MAX as u128) as i32
                }
            };
            match self.pull(ms) {
                Pull::Items => {}
                Pull::Nothing if deadline.is_some() => return Ok(None),
                Pull::Nothing => {}
                Pull::End(None) => return Ok(None),
                Pull::End(Some(e)) => return Err(e),
            }
        }
    }

    pub(crate) fn resume_sequence(&self) -> u64 {
        self.next_sequence
    }

    pub(crate) fn closer(&self) -> StreamCloser {
        StreamCloser { handle: self.handle, closed: self.closed.clone() }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn poll_item(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Result<T, Error>>> {
        use std::task::Poll;
        loop {
            if let Some(item) = self.take() {
                return Poll::Ready(Some(item));
            }
            if self.done {
                return Poll::Ready(None);
            }
            if self.async_fd.is_none() {
                let fd = match ffi::stream_fd(self.handle) {
                    Ok(fd) => fd,
                    Err(e) => {
                        self.done = true;
                        return Poll::Ready(if self.closed.load(Ordering::Acquire) { None } else { Some(Err(e)) });
                    }
                };
                // SAFETY: the library keeps the descriptor open until hms_stream_close, which
                // Drop calls only after dropping the AsyncFd.
                let registered =
                    unsafe { tokio::io::unix::AsyncFd::register_with_interest(Fd(fd), tokio::io::Interest::READABLE) };
                match registered {
                    Ok(a) => self.async_fd = Some(a),
                    Err(e) => {
                        self.done = true;
                        return Poll::Ready(Some(Err(Error::new(
                            Code::Internal,
                            format!("waiting on the stream: {e}"),
                        ))));
                    }
                }
            }
            let afd = self.async_fd.as_ref().expect("set above");
            let mut guard = match afd.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(Error::new(Code::Internal, format!("waiting on the stream: {e}")))));
                }
            };
            // The descriptor is readable: take what is waiting without blocking.
            let got = match ffi::next(self.handle, 0, 0) {
                Ok(Some(batch)) => Ok(Some(batch)),
                Ok(None) => {
                    guard.clear_ready();
                    Ok(None)
                }
                Err(e) => Err(e),
            };
            drop(guard);
            match got {
                Ok(Some(batch)) => {
                    self.batch = Some(batch);
                    self.pos = 0;
                }
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    let e = self.ended(e);
                    if e.code() == Code::Cancelled || self.closed.load(Ordering::Acquire) {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}

impl<T> Drop for RawStream<T> {
    fn drop(&mut self) {
        #[cfg(feature = "tokio")]
        drop(self.async_fd.take());
        self.closed.store(true, Ordering::Release);
        let _ = ffi::stream_close(self.handle);
    }
}

/// Closes a stream from another thread, waking a blocked `next` (which then ends the
/// iteration). Cloneable, `Send + Sync`; closing twice is fine.
///
/// ```
/// use hms_agent::lifecycle::*;
/// let manager = LifecycleManagerFFI::new();
/// let mut events = manager.watch_events(WatchEventsRequest::default()).unwrap();
/// let closer = events.closer();
/// std::thread::spawn(move || closer.close());
/// assert!(events.next().is_none()); // woken by the close
/// ```
#[derive(Debug, Clone)]
pub struct StreamCloser {
    handle: u64,
    closed: Arc<AtomicBool>,
}

impl StreamCloser {
    /// Closes the stream.
    ///
    /// ```
    /// # use hms_agent::lifecycle::*;
    /// # let manager = LifecycleManagerFFI::new();
    /// let events = manager.watch_events(WatchEventsRequest::default()).unwrap();
    /// events.closer().close();
    /// ```
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = ffi::stream_close(self.handle);
    }
}

/// A stream of lifecycle events (`watch_events`): an `Iterator` whose `next` blocks until an
/// event comes, and with the crate's `tokio` feature a `futures::Stream` that waits on the
/// stream's readiness descriptor through tokio's reactor, never parking an executor thread
/// (poll it inside a tokio runtime: registering the descriptor needs tokio's reactor).
///
/// The iteration ends (`None`) when the stream is closed by [`StreamCloser`]; any other end
/// is one `Err` (the manager closed: `Unavailable`; cut off for falling behind:
/// `ResourceExhausted`), after which [`EventStream::resume_sequence`] (or the error's
/// [`Error::resume_sequence`]) is the `from_sequence` that resumes it with no gap and no
/// duplicate. Dropping it closes it, without blocking.
///
/// ```
/// use hms_agent::lifecycle::*;
/// let manager = LifecycleManagerFFI::new();
/// manager.register_agent("a1").unwrap();
/// let mut events = manager
///     .watch_events(WatchEventsRequest { agent_id: "a1".into(), from_sequence: 1, ..Default::default() })
///     .unwrap();
/// let first = events.next().unwrap().unwrap();
/// assert_eq!(first.new_state, LifecycleState::Initialized);
/// assert_eq!(events.resume_sequence(), first.sequence + 1);
/// ```
pub struct EventStream {
    raw: RawStream<LifecycleEvent>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").field("handle", &self.raw.handle).field("done", &self.raw.done).finish()
    }
}

impl EventStream {
    pub(crate) fn new(handle: u64, from_sequence: u64) -> Self {
        EventStream { raw: RawStream::new(handle, from_sequence) }
    }

    /// The next event, waiting at most `timeout`: `Ok(None)` when none came in time or the
    /// stream was closed by its closer.
    ///
    /// ```
    /// # use hms_agent::lifecycle::*;
    /// # use std::time::Duration;
    /// let manager = LifecycleManagerFFI::new();
    /// let mut events = manager.watch_events(WatchEventsRequest::default()).unwrap();
    /// assert!(events.next_timeout(Duration::from_millis(10)).unwrap().is_none());
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<LifecycleEvent>, Error> {
        self.raw.next_timeout(Some(timeout))
    }

    /// The `from_sequence` that resumes this stream after the last event it delivered (or
    /// where the ended stream said to resume).
    ///
    /// ```
    /// # use hms_agent::lifecycle::*;
    /// let manager = LifecycleManagerFFI::new();
    /// let events = manager.watch_events(WatchEventsRequest { from_sequence: 5, ..Default::default() }).unwrap();
    /// assert_eq!(events.resume_sequence(), 5);
    /// ```
    pub fn resume_sequence(&self) -> u64 {
        self.raw.resume_sequence()
    }

    /// A handle that closes this stream from another thread.
    ///
    /// ```
    /// # use hms_agent::lifecycle::*;
    /// # let manager = LifecycleManagerFFI::new();
    /// let mut events = manager.watch_events(WatchEventsRequest::default()).unwrap();
    /// events.closer().close();
    /// assert!(events.next().is_none());
    /// ```
    pub fn closer(&self) -> StreamCloser {
        self.raw.closer()
    }

    /// The next event, awaited without blocking the executor's thread (the `tokio` feature;
    /// inside a tokio runtime). The same as `futures::StreamExt::next`, under a name that
    /// does not clash with `Iterator::next`.
    ///
    /// ```
    /// # use hms_agent::lifecycle::*;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("a1").unwrap();
    /// let mut events = manager.watch_events(WatchEventsRequest { from_sequence: 1, ..Default::default() }).unwrap();
    /// let event = events.next_async().await.unwrap().unwrap();
    /// assert_eq!(event.agent_id, "a1");
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn next_async(&mut self) -> Option<Result<LifecycleEvent, Error>> {
        std::future::poll_fn(|cx| self.raw.poll_item(cx)).await
    }

    /// This stream as a plain `futures::Stream` (the `tokio` feature), whose methods do not
    /// clash with `Iterator`'s when `futures::StreamExt` is in scope.
    ///
    /// ```
    /// # use hms_agent::lifecycle::*;
    /// use futures::StreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let manager = LifecycleManagerFFI::new();
    /// manager.register_agent("a1").unwrap();
    /// let req = WatchEventsRequest { from_sequence: 1, ..Default::default() };
    /// let mut events = manager.watch_events(req).unwrap().into_stream();
    /// assert_eq!(events.next().await.unwrap().unwrap().agent_id, "a1");
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn into_stream(self) -> AsyncEventStream {
        AsyncEventStream { inner: self }
    }

    /// Whether the stream has ended.
    ///
    /// ```
    /// # use hms_agent::lifecycle::*;
    /// # let manager = LifecycleManagerFFI::new();
    /// let events = manager.watch_events(WatchEventsRequest::default()).unwrap();
    /// assert!(!events.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.raw.is_done()
    }
}

impl Iterator for EventStream {
    type Item = Result<LifecycleEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.raw.next_timeout(None).transpose()
    }
}

#[cfg(feature = "tokio")]
impl futures_core::Stream for EventStream {
    type Item = Result<LifecycleEvent, Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().raw.poll_item(cx)
    }
}

impl Item for Vec<u8> {
    fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Ok(bytes.to_vec())
    }
    fn sequence(&self) -> u64 {
        0
    }
}

/// A stream whose items are the messages' bytes in the format it was opened with
/// ([`LifecycleManagerFFI::watch_raw_stream`](super::LifecycleManagerFFI::watch_raw_stream)).
///
/// ```
/// use hms_agent::lifecycle::{Format, LifecycleManagerFFI};
/// let manager = LifecycleManagerFFI::new();
/// let mut s = manager.watch_raw_stream("WatchEvents", Format::Json, b"{}").unwrap();
/// s.closer().close();
/// assert!(s.next().is_none());
/// ```
pub struct RawEventStream {
    raw: RawStream<Vec<u8>>,
}

impl std::fmt::Debug for RawEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEventStream").field("handle", &self.raw.handle).finish()
    }
}

impl RawEventStream {
    pub(crate) fn new(handle: u64) -> Self {
        RawEventStream { raw: RawStream::new(handle, 0) }
    }

    /// The next item, waiting at most `timeout`: `Ok(None)` when none came in time or the
    /// stream was closed by its closer; the stream's end is an `Err` with its code.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{Format, LifecycleManagerFFI};
    /// # let manager = LifecycleManagerFFI::new();
    /// let mut s = manager.watch_raw_stream("WatchEvents", Format::Json, b"{}").unwrap();
    /// assert!(s.next_timeout(std::time::Duration::ZERO).unwrap().is_none());
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        self.raw.next_timeout(Some(timeout))
    }

    /// A handle that closes this stream from another thread.
    ///
    /// ```
    /// # use hms_agent::lifecycle::{Format, LifecycleManagerFFI};
    /// # let manager = LifecycleManagerFFI::new();
    /// let s = manager.watch_raw_stream("WatchEvents", Format::Json, b"{}").unwrap();
    /// s.closer().close();
    /// ```
    pub fn closer(&self) -> StreamCloser {
        self.raw.closer()
    }
}

impl Iterator for RawEventStream {
    type Item = Result<Vec<u8>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.raw.next_timeout(None).transpose()
    }
}

/// An [`EventStream`] as a plain `futures::Stream` ([`EventStream::into_stream`]).
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncEventStream {
    inner: EventStream,
}

#[cfg(feature = "tokio")]
impl futures_core::Stream for AsyncEventStream {
    type Item = Result<LifecycleEvent, Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().inner.raw.poll_item(cx)
    }
}
