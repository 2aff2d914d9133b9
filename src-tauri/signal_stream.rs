//! D-Bus signal streams in `tokio::select!` loops: the notifier's and the
//! launcher badge's subscriptions may fail (no such service yet, a bus
//! that refuses match rules), and a loop then waits on its other branches.

/// The next signal of `stream`, or never when there is no subscription
/// (a `select!` branch that then simply never fires).
#[cfg(target_os = "linux")]
pub(crate) async fn next_or_never<S>(stream: &mut Option<S>) -> Option<S::Item>
where
    S: futures_util::Stream + Unpin,
{
    use futures_util::StreamExt;
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
