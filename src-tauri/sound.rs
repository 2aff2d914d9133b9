//! Sound alerts: a ring that repeats until the alert is resolved and a
//! short chime, played through rodio on a thread of their own.
//!
//! The tones are synthesised by [`tones`] (pure functions, unit-tested)
//! and bundled in the binary: no audio files. The output stream is opened
//! and owned by the sound thread (cpal streams are not `Send` everywhere),
//! only while there is something to play; the engine's effects reach it as
//! [`SoundCommand`]s over a channel. With no output device at start the
//! thread logs one warning and ends, and commands are dropped: alerts are
//! then visual only.

use std::num::NonZero;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rodio::{DeviceSinkBuilder, MixerDeviceSink, Player, Source};
use switchboard_client::settings::Tone;

/// What the sound thread is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoundCommand {
    /// Ring until [`SoundCommand::StopRing`]; a ring already going with
    /// other parameters restarts with these.
    Ring {
        /// Which tone.
        tone: Tone,
        /// 0–100.
        volume: u8,
    },
    /// Stop the ring (nothing happens when none is going).
    StopRing,
    /// Play the chime once.
    Chime {
        /// 0–100.
        volume: u8,
    },
}

/// The managed handle to the sound thread.
pub struct Sound(mpsc::Sender<SoundCommand>);

impl Sound {
    /// Starts the sound thread. Never fails: without an output device (or
    /// a thread) sounds are dropped.
    pub fn spawn() -> Sound {
        let (tx, rx) = mpsc::channel();
        if let Err(e) = std::thread::Builder::new()
            .name("sound".into())
            .spawn(move || run(rx))
        {
            tracing::warn!(error = %e, "no sound thread; alerts are visual only");
        }
        Sound(tx)
    }

    /// Sends a command; dropped when there is no output.
    pub fn send(&self, cmd: SoundCommand) {
        let _ = self.0.send(cmd);
    }
}

/// How long the output stays open after the last sound: an open stream
/// wakes the CPU every buffer, so an idle app keeps none open.
const CLOSE_AFTER: Duration = Duration::from_secs(5);

/// While ringing, how often the sound thread checks its output is alive.
const LOST_CHECK: Duration = Duration::from_secs(1);

/// The sound thread: opens the output when there is something to play and
/// closes it again once quiet for [`CLOSE_AFTER`].
fn run(rx: mpsc::Receiver<SoundCommand>) {
    let mut lib_messages = LibMessages::capture();
    // Set by the output's error callback when its device or audio server
    // went away (a headset unplugged): the stream is dead, and everything
    // played into it would be silent until it is opened again.
    let lost = Arc::new(AtomicBool::new(false));
    // Probe once at start, so a missing device is reported once, up front.
    match open_output(&lost) {
        Ok(probe) => {
            tracing::info!(
                rate = probe.config().sample_rate().get(),
                channels = probe.config().channel_count().get(),
                "audio output available"
            );
        }
        Err(e) => {
            // Not the end of sound for the day: a headset plugged in or an
            // audio server started later is found at the next ring.
            tracing::debug!(details = %lib_messages.take(), "audio library messages");
            tracing::warn!(error = %e, "no audio output device for now; alerts are visual until one appears");
        }
    }
    let mut output: Option<MixerDeviceSink> = None;
    let mut ring: Option<(Tone, u8, Player)> = None;
    loop {
        if lost.swap(false, Ordering::SeqCst) && output.is_some() {
            tracing::info!("audio output lost; opening the default one again");
            output = None;
            // A ring under way goes on, on whatever output there is now.
            if let Some((tone, volume, _)) = ring.take() {
                if let Some(out) = ensure_open(&mut output, &mut lib_messages, &lost) {
                    let player = Player::connect_new(out.mixer());
                    player.append(buffer(tones::ring_cycle(tone, volume)).repeat_infinite());
                    ring = Some((tone, volume, player));
                }
            }
        }
        let cmd = if ring.is_some() {
            // Ringing: woken now and then to notice a lost output.
            match rx.recv_timeout(LOST_CHECK) {
                Ok(cmd) => cmd,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else if output.is_some() {
            match rx.recv_timeout(CLOSE_AFTER) {
                Ok(cmd) => cmd,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // No ring, and any chime ended long ago.
                    output = None;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(cmd) => cmd,
                Err(_) => return,
            }
        };
        match cmd {
            SoundCommand::Ring { tone, volume } => {
                if matches!(&ring, Some((t, v, _)) if *t == tone && *v == volume) {
                    continue;
                }
                // Dropping the old player stops it.
                ring = None;
                if volume > 0 {
                    if let Some(out) = ensure_open(&mut output, &mut lib_messages, &lost) {
                        let player = Player::connect_new(out.mixer());
                        player.append(buffer(tones::ring_cycle(tone, volume)).repeat_infinite());
                        ring = Some((tone, volume, player));
                    }
                }
            }
            SoundCommand::StopRing => ring = None,
            SoundCommand::Chime { volume } => {
                if volume > 0 {
                    if let Some(out) = ensure_open(&mut output, &mut lib_messages, &lost) {
                        out.mixer().add(buffer(tones::chime(volume)));
                    }
                }
            }
        }
    }
}

/// The open output, opening it if needed; `None` (logged) when the device
/// went away since the start: this alert is then visual only.
fn ensure_open<'a>(
    output: &'a mut Option<MixerDeviceSink>,
    lib_messages: &mut LibMessages,
    lost: &Arc<AtomicBool>,
) -> Option<&'a MixerDeviceSink> {
    if output.is_none() {
        match open_output(lost) {
            Ok(o) => *output = Some(o),
            Err(e) => {
                // Info, not a warning: with no device at all this comes at
                // every ring and chime.
                tracing::debug!(details = %lib_messages.take(), "audio library messages");
                tracing::info!(error = %e, "audio output unavailable; this alert is visual only");
            }
        }
    }
    output.as_ref()
}

/// alsa-lib prints its own errors on stderr (half a dozen lines on a
/// machine without a sound card, next to our one warning). On the sound
/// thread, where every device is opened, they are collected instead and
/// logged at debug level.
struct LibMessages {
    #[cfg(target_os = "linux")]
    alsa: Option<std::rc::Rc<std::cell::RefCell<alsa::Output>>>,
}

impl LibMessages {
    fn capture() -> LibMessages {
        LibMessages {
            #[cfg(target_os = "linux")]
            alsa: alsa::Output::local_error_handler().ok(),
        }
    }

    /// What was collected so far; starts afresh.
    fn take(&mut self) -> String {
        #[cfg(target_os = "linux")]
        {
            let text = self
                .alsa
                .as_ref()
                .map(|o| o.borrow().to_string())
                .unwrap_or_default();
            *self = LibMessages::capture();
            text
        }
        #[cfg(not(target_os = "linux"))]
        String::new()
    }
}

/// The default output device, in its own or a fallback configuration.
fn open_output(lost: &Arc<AtomicBool>) -> Result<MixerDeviceSink, rodio::DeviceSinkError> {
    let lost = lost.clone();
    let mut output = DeviceSinkBuilder::from_default_device()?
        .with_error_callback(move |e: rodio::CpalError| {
            tracing::debug!(error = %e, "audio output error");
            if matches!(
                e.kind(),
                rodio::CpalErrorKind::DeviceNotAvailable | rodio::CpalErrorKind::HostUnavailable
            ) {
                lost.store(true, Ordering::SeqCst);
            }
        })
        .open_sink_or_fallback()?;
    // Closing it is routine here, not worth rodio's note on stderr.
    output.log_on_drop(false);
    Ok(output)
}

fn buffer(samples: Vec<f32>) -> rodio::buffer::SamplesBuffer {
    const MONO: NonZero<u16> = NonZero::<u16>::MIN;
    let rate = NonZero::new(tones::RATE).unwrap_or(NonZero::<u32>::MIN);
    rodio::buffer::SamplesBuffer::new(MONO, rate, samples)
}

/// The tones, synthesised: mono `f32` samples at [`tones::RATE`].
pub mod tones {
    use std::f32::consts::TAU;

    use switchboard_client::settings::Tone;

    /// Sample rate of every tone.
    pub const RATE: u32 = 48_000;
    /// Peak amplitude at volume 100 (headroom for the mixer).
    pub const FULL_SCALE: f32 = 0.6;
    /// Fade in and out of every burst, so bursts do not click.
    const RAMP_SECS: f32 = 0.005;

    /// One burst of sound or a pause, in seconds.
    #[derive(Debug, Clone, Copy)]
    enum Part {
        /// Frequencies (summed, equal weight) for the duration.
        Tone(&'static [f32], f32),
        /// Silence.
        Pause(f32),
    }

    /// One cycle of the ring; the player repeats it. Every cycle ends in a
    /// pause, so a repeated ring has gaps.
    pub fn ring_cycle(tone: Tone, volume: u8) -> Vec<f32> {
        use Part::{Pause, Tone as T};
        let parts: &[Part] = match tone {
            // The telephone's double ring, two mixed tones.
            Tone::Classic => &[
                T(&[400.0, 450.0], 0.4),
                Pause(0.2),
                T(&[400.0, 450.0], 0.4),
                Pause(1.0),
            ],
            // One long, gently swelling tone.
            Tone::Soft => &[T(&[523.25], 1.0), Pause(0.8)],
            // Three quick high beeps.
            Tone::Digital => &[
                T(&[1000.0], 0.1),
                Pause(0.05),
                T(&[1300.0], 0.1),
                Pause(0.05),
                T(&[1000.0], 0.1),
                Pause(1.0),
            ],
        };
        let ramp = if tone == Tone::Soft { 0.3 } else { RAMP_SECS };
        render(parts, volume, ramp)
    }

    /// The chime: two short falling notes.
    pub fn chime(volume: u8) -> Vec<f32> {
        render(
            &[Part::Tone(&[659.25], 0.15), Part::Tone(&[523.25], 0.3)],
            volume,
            RAMP_SECS,
        )
    }

    /// Linear volume: 0 is silence, 100 is [`FULL_SCALE`].
    pub fn gain(volume: u8) -> f32 {
        FULL_SCALE * f32::from(volume.min(100)) / 100.0
    }

    fn render(parts: &[Part], volume: u8, ramp_secs: f32) -> Vec<f32> {
        let gain = gain(volume);
        let rate = RATE as f32;
        let mut out = Vec::new();
        for part in parts {
            match *part {
                Part::Pause(secs) => out.resize(out.len() + (secs * rate) as usize, 0.0),
                Part::Tone(freqs, secs) => {
                    let n = (secs * rate) as usize;
                    let ramp = ((ramp_secs * rate) as usize).clamp(1, n / 2);
                    let weight = gain / freqs.len() as f32;
                    out.extend((0..n).map(|i| {
                        let t = i as f32 / rate;
                        let edge = i.min(n - 1 - i);
                        let envelope = (edge as f32 / ramp as f32).min(1.0);
                        let wave: f32 = freqs.iter().map(|f| (TAU * f * t).sin()).sum();
                        weight * envelope * wave
                    }));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::tones::*;
    use switchboard_client::settings::Tone;

    const ALL: [Tone; 3] = [Tone::Classic, Tone::Soft, Tone::Digital];

    fn peak(s: &[f32]) -> f32 {
        s.iter().fold(0.0, |m, x| m.max(x.abs()))
    }

    fn rms(s: &[f32]) -> f32 {
        (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt()
    }

    #[test]
    fn each_ring_is_audible_and_lasts_its_cycle() {
        for (tone, secs) in [
            (Tone::Classic, 2.0),
            (Tone::Soft, 1.8),
            (Tone::Digital, 1.4),
        ] {
            let s = ring_cycle(tone, 100);
            let want = (secs * RATE as f32) as usize;
            assert!(s.len().abs_diff(want) <= 2, "{tone:?}: {} samples", s.len());
            assert!(rms(&s) > 0.05, "{tone:?} is too quiet: {}", rms(&s));
            assert!(peak(&s) <= FULL_SCALE + 1e-4, "{tone:?} clips");
        }
    }

    #[test]
    fn the_tones_differ() {
        let c = ring_cycle(Tone::Classic, 80);
        let s = ring_cycle(Tone::Soft, 80);
        let d = ring_cycle(Tone::Digital, 80);
        assert_ne!(c, s);
        assert_ne!(s, d);
        assert_ne!(c, d);
    }

    #[test]
    fn volume_scales_the_amplitude() {
        for tone in ALL {
            let full = peak(&ring_cycle(tone, 100));
            let half = peak(&ring_cycle(tone, 50));
            assert!(
                (half / full - 0.5).abs() < 0.01,
                "{tone:?}: {half} vs {full}"
            );
            assert_eq!(peak(&ring_cycle(tone, 0)), 0.0);
            // Out-of-range volumes are capped, never louder than full.
            assert_eq!(peak(&ring_cycle(tone, 250)), full);
        }
        let loud = peak(&chime(100));
        assert!((peak(&chime(25)) / loud - 0.25).abs() < 0.01);
        assert_eq!(peak(&chime(0)), 0.0);
    }

    #[test]
    fn a_ring_cycle_ends_in_a_gap_so_repeats_are_heard_as_rings() {
        for tone in ALL {
            let s = ring_cycle(tone, 100);
            // The last 0.7 s of every cycle is silence.
            let gap = (0.7 * RATE as f32) as usize;
            assert!(s[s.len() - gap..].iter().all(|x| *x == 0.0), "{tone:?}");
            // ...and the first 0.1 s is sound.
            assert!(rms(&s[..RATE as usize / 10]) > 0.01, "{tone:?}");
        }
        // The classic ring is a double ring: a short gap between two bursts.
        let s = ring_cycle(Tone::Classic, 100);
        let r = RATE as usize;
        assert!(rms(&s[r / 2..r / 2 + r / 10]) == 0.0, "gap at 0.5 s");
        assert!(rms(&s[r * 7 / 10..r * 9 / 10]) > 0.05, "second burst");
    }

    #[test]
    fn the_chime_is_short_and_fades_in_and_out() {
        let s = chime(100);
        assert!(s.len().abs_diff((0.45 * RATE as f32) as usize) <= 2);
        assert!(rms(&s) > 0.05);
        // No click: the first and last samples are (near) zero.
        assert!(s[0].abs() < 1e-3 && s[s.len() - 1].abs() < 1e-2);
    }
}
