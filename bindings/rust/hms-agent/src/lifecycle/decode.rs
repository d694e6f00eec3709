//! Decoders for the answers on the hot path — `GetStateResponse`, `TransitionResponse` and
//! `LifecycleEvent` — straight from protobuf into the API's types. Going through prost's
//! messages first costs an intermediate value, its moves and a second pass, which was
//! a third of the crate's overhead over a bare C call; these give the same values (checked
//! against prost in the tests) in one pass. Rarer nested messages (error details, hook
//! outcomes, supervision) still go through prost.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prost::Message;

use super::types::*;
use crate::error::{Code, Error};
use crate::proto::agent as pb;

fn malformed(what: &str) -> Error {
    Error::new(Code::Internal, format!("decoding the library's answer: {what}"))
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, Error> {
        let mut v = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(v);
            }
        }
        Err(malformed("invalid varint"))
    }

    /// The next field's number and wire type, or None at the end.
    fn key(&mut self) -> Result<Option<(u32, u8)>, Error> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        let (field, wire) = ((k >> 3) as u32, (k & 7) as u8);
        if field == 0 {
            return Err(malformed("field number 0"));
        }
        Ok(Some((field, wire)))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = self.varint()? as usize;
        if n > self.buf.len() {
            return Err(malformed("buffer underflow"));
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }

    fn string(&mut self) -> Result<String, Error> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| malformed("invalid UTF-8 in a string"))
    }

    fn skip(&mut self, wire: u8) -> Result<(), Error> {
        let n = match wire {
            0 => return self.varint().map(drop),
            1 => 8,
            2 => return self.bytes().map(drop),
            5 => 4,
            _ => return Err(malformed("unsupported wire type")),
        };
        if n > self.buf.len() {
            return Err(malformed("buffer underflow"));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }

    /// A repeated enum field, packed (wire type 2) or not.
    fn states(&mut self, wire: u8, out: &mut Vec<LifecycleState>) -> Result<(), Error> {
        if wire == 0 {
            out.push(LifecycleState::from_i32(self.varint()? as i32));
            return Ok(());
        }
        let mut r = Reader { buf: self.bytes()? };
        out.reserve(r.buf.len());
        while !r.buf.is_empty() {
            out.push(LifecycleState::from_i32(r.varint()? as i32));
        }
        Ok(())
    }

    /// A map<string, string> entry.
    fn entry(&mut self, map: &mut HashMap<String, String>) -> Result<(), Error> {
        let mut r = Reader { buf: self.bytes()? };
        let (mut k, mut v) = (String::new(), String::new());
        while let Some((field, wire)) = r.key()? {
            match (field, wire) {
                (1, 2) => k = r.string()?,
                (2, 2) => v = r.string()?,
                _ => r.skip(wire)?,
            }
        }
        map.insert(k, v);
        Ok(())
    }

    /// A google.protobuf.Timestamp, merged into (seconds, nanos).
    fn timestamp(&mut self, t: &mut Option<(i64, i32)>) -> Result<(), Error> {
        let mut r = Reader { buf: self.bytes()? };
        let (s, n) = t.get_or_insert((0, 0));
        while let Some((field, wire)) = r.key()? {
            match (field, wire) {
                (1, 0) => *s = r.varint()? as i64,
                (2, 0) => *n = r.varint()? as i32,
                _ => r.skip(wire)?,
            }
        }
        Ok(())
    }

    /// A nested message decoded by prost, merged into what came before.
    fn merge<M: Message + Default>(&mut self, m: &mut Option<M>) -> Result<(), Error> {
        m.get_or_insert_with(M::default).merge(self.bytes()?)?;
        Ok(())
    }
}

fn time(t: Option<(i64, i32)>) -> Option<DateTime<Utc>> {
    t.and_then(|(s, n)| DateTime::from_timestamp(s, n.clamp(0, 999_999_999) as u32))
}

/// Fails on a field of the wrong wire type, as prost does.
fn wrong(field: u32) -> Error {
    malformed(&format!("field {field} has the wrong wire type"))
}

pub(crate) fn get_state(buf: &[u8]) -> Result<GetStateResponse, Error> {
    let mut r = Reader { buf };
    let mut out = GetStateResponse::default();
    let (mut last, mut created, mut error_info) = (None, None, None::<pb::ErrorInfo>);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 0) => out.state = LifecycleState::from_i32(r.varint()? as i32),
            (2, 0) => out.time_in_state_ms = r.varint()? as i64,
            (3, 0) => out.previous_state = LifecycleState::from_i32(r.varint()? as i32),
            (4, 2) => r.entry(&mut out.metadata)?,
            (5, 0) => out.is_transitioning = r.varint()? != 0,
            (6, 2) => r.timestamp(&mut last)?,
            (7, 2) => r.merge(&mut error_info)?,
            (8, 2) => out.agent_id = r.string()?,
            (9, 0) => out.revision = r.varint()? as i64,
            (10, 2) => r.entry(&mut out.labels)?,
            (11, 2) => r.timestamp(&mut created)?,
            (12, 0 | 2) => r.states(wire, &mut out.allowed_next_states)?,
            (13, 0) => out.last_sequence = r.varint()?,
            (14, 2) => r.merge(&mut out.supervision)?,
            (1..=14, _) => return Err(wrong(field)),
            _ => r.skip(wire)?,
        }
    }
    out.last_transition = time(last);
    out.created_at = time(created);
    out.error_info = error_info.map(Into::into);
    Ok(out)
}

pub(crate) fn transition(buf: &[u8]) -> Result<TransitionResponse, Error> {
    let mut r = Reader { buf };
    let mut out = TransitionResponse::default();
    let mut message = String::new();
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 0) => out.success = r.varint()? != 0,
            (2, 0) => out.previous_state = LifecycleState::from_i32(r.varint()? as i32),
            (3, 0) => out.current_state = LifecycleState::from_i32(r.varint()? as i32),
            (4, 2) => out.event = Some(event(r.bytes()?)?),
            (5, 2) => message = r.string()?,
            (6, 0) => out.refusal_reason = RefusalReason::from_i32(r.varint()? as i32),
            (7, 0 | 2) => r.states(wire, &mut out.allowed_next_states)?,
            (8, 2) => out.hook_outcomes.push(pb::HookOutcome::decode(r.bytes()?)?.into()),
            (9, 0) => out.revision = r.varint()? as i64,
            (1..=9, _) => return Err(wrong(field)),
            _ => r.skip(wire)?,
        }
    }
    out.error_message = (!message.is_empty()).then_some(message);
    Ok(out)
}

pub(crate) fn event(buf: &[u8]) -> Result<LifecycleEvent, Error> {
    let mut r = Reader { buf };
    let mut out = LifecycleEvent {
        event_id: String::new(),
        agent_id: String::new(),
        previous_state: LifecycleState::default(),
        new_state: LifecycleState::default(),
        transition_type: TransitionType::default(),
        timestamp: DateTime::UNIX_EPOCH,
        initiated_by: String::new(),
        reason: String::new(),
        metadata: HashMap::new(),
        sequence: 0,
        revision: 0,
        error_info: None,
        hook_outcomes: Vec::new(),
        bookmark: false,
    };
    let (mut ts, mut error_info) = (None, None::<pb::ErrorInfo>);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) => out.event_id = r.string()?,
            (2, 2) => out.agent_id = r.string()?,
            (3, 0) => out.previous_state = LifecycleState::from_i32(r.varint()? as i32),
            (4, 0) => out.new_state = LifecycleState::from_i32(r.varint()? as i32),
            (5, 0) => out.transition_type = TransitionType::from_i32(r.varint()? as i32),
            (6, 2) => r.timestamp(&mut ts)?,
            (7, 2) => out.initiated_by = r.string()?,
            (8, 2) => out.reason = r.string()?,
            (9, 2) => r.entry(&mut out.metadata)?,
            (10, 0) => out.sequence = r.varint()?,
            (11, 2) => r.merge(&mut error_info)?,
            (12, 2) => out.hook_outcomes.push(pb::HookOutcome::decode(r.bytes()?)?.into()),
            (13, 0) => out.bookmark = r.varint()? != 0,
            (14, 0) => out.revision = r.varint()? as i64,
            (1..=14, _) => return Err(wrong(field)),
            _ => r.skip(wire)?,
        }
    }
    out.timestamp = time(ts).unwrap_or(DateTime::UNIX_EPOCH);
    out.error_info = error_info.map(Into::into);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    /// A small deterministic generator, so that failures reproduce.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn pick(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn int(&mut self) -> i64 {
            match self.pick(4) {
                0 => 0,
                1 => -(self.next() as i64),
                2 => i64::MAX - self.pick(3) as i64,
                _ => self.next() as i64,
            }
        }
        fn state(&mut self) -> i32 {
            self.pick(12) as i32 - 1 // unknown values too
        }
        fn text(&mut self) -> String {
            ["", "a", "agent-001", "ünïcode ✓", "x".repeat(300).as_str()][self.pick(5) as usize].to_string()
        }
        fn time(&mut self) -> Option<Timestamp> {
            (self.pick(3) > 0)
                .then(|| Timestamp { seconds: self.int() % 1_000_000_000_000, nanos: self.pick(1_100_000_000) as i32 })
        }
        /// Maps of at most one entry, so that their Debug output has one order.
        fn map(&mut self) -> HashMap<String, String> {
            (0..self.pick(2)).map(|_| (self.text(), self.text())).collect()
        }
        fn states(&mut self) -> Vec<i32> {
            (0..self.pick(5)).map(|_| self.state()).collect()
        }
        fn error_info(&mut self) -> Option<pb::ErrorInfo> {
            (self.pick(3) == 0).then(|| pb::ErrorInfo {
                code: self.int() as i32,
                message: self.text(),
                timestamp: self.time(),
                is_recoverable: self.pick(2) == 1,
                recovery_actions: (0..self.pick(3)).map(|_| self.text()).collect(),
            })
        }
        fn outcomes(&mut self) -> Vec<pb::HookOutcome> {
            (0..self.pick(3))
                .map(|_| pb::HookOutcome {
                    hook_id: self.text(),
                    hook_name: self.text(),
                    result: self.pick(6) as i32,
                    message: self.text(),
                    latency_us: self.int(),
                    enforced: self.pick(2) == 1,
                })
                .collect()
        }
        fn event(&mut self) -> pb::LifecycleEvent {
            pb::LifecycleEvent {
                event_id: self.text(),
                agent_id: self.text(),
                previous_state: self.state(),
                new_state: self.state(),
                transition_type: self.pick(6) as i32,
                timestamp: self.time(),
                initiated_by: self.text(),
                reason: self.text(),
                metadata: self.map(),
                sequence: self.next() << self.pick(31),
                error_info: self.error_info(),
                hook_outcomes: self.outcomes(),
                bookmark: self.pick(2) == 1,
                revision: self.int(),
            }
        }
    }

    /// Every hand decoder gives what prost and the From conversions give, on random
    /// messages (encoded by prost, with unknown fields appended) and on their truncations.
    #[test]
    fn same_as_prost() {
        let mut g = Gen(7);
        // Field 99 (unknown), as a newer library might send.
        let unknown = [0x9a, 0x06, 0x02, b'h', b'i'];
        for _ in 0..3000 {
            let gs = pb::GetStateResponse {
                state: g.state(),
                time_in_state_ms: g.int(),
                previous_state: g.state(),
                metadata: g.map(),
                is_transitioning: g.pick(2) == 1,
                last_transition: g.time(),
                error_info: g.error_info(),
                agent_id: g.text(),
                revision: g.int(),
                labels: g.map(),
                created_at: g.time(),
                allowed_next_states: g.states(),
                last_sequence: g.next(),
                supervision: (g.pick(2) == 1).then(|| pb::SupervisionStatus {
                    default_policy: g.pick(2) == 1,
                    recoveries_in_window: g.pick(9) as u32,
                    last_heartbeat: g.time(),
                    ..Default::default()
                }),
            };
            let mut b = gs.encode_to_vec();
            b.extend_from_slice(&unknown);
            let want: GetStateResponse = pb::GetStateResponse::decode(b.as_slice()).unwrap().into();
            assert_eq!(format!("{:?}", get_state(&b).unwrap()), format!("{want:?}"));

            let tr = pb::TransitionResponse {
                success: g.pick(2) == 1,
                previous_state: g.state(),
                current_state: g.state(),
                event: (g.pick(3) > 0).then(|| g.event()),
                error_message: g.text(),
                refusal_reason: g.pick(12) as i32,
                allowed_next_states: g.states(),
                hook_outcomes: g.outcomes(),
                revision: g.int(),
            };
            let mut b = tr.encode_to_vec();
            b.extend_from_slice(&unknown);
            let want: TransitionResponse = pb::TransitionResponse::decode(b.as_slice()).unwrap().into();
            assert_eq!(format!("{:?}", transition(&b).unwrap()), format!("{want:?}"));

            let ev = g.event();
            let b = ev.encode_to_vec();
            let want: LifecycleEvent = pb::LifecycleEvent::decode(b.as_slice()).unwrap().into();
            assert_eq!(format!("{:?}", event(&b).unwrap()), format!("{want:?}"));

            // Truncated, it fails exactly when prost fails.
            let cut = g.pick(b.len() as u64 + 1) as usize;
            assert_eq!(event(&b[..cut]).is_err(), pb::LifecycleEvent::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn maps_unpacked_states_and_bad_input() {
        let ev = pb::LifecycleEvent {
            metadata: (0..50).map(|i| (format!("k{i}"), format!("v{i}"))).collect(),
            ..Default::default()
        };
        assert_eq!(event(&ev.encode_to_vec()).unwrap().metadata, ev.metadata);
        // allowed_next_states unpacked (field 12, varint), as other encoders may send it.
        let b = [0x60, 0x02, 0x60, 0x03];
        assert_eq!(get_state(&b).unwrap().allowed_next_states, vec![LifecycleState::Active, LifecycleState::Paused]);
        // A string that is not UTF-8, and a field of the wrong wire type.
        assert_eq!(event(&[0x12, 0x01, 0xff]).unwrap_err().code(), Code::Internal);
        assert_eq!(transition(&[0x08 | 2, 0x00]).unwrap_err().code(), Code::Internal);
    }
}
