-- Wireshark dissector for the mcast wire protocol, version 1
-- (docs/protocol.md): the 24-byte header, every frame type's body, the
-- records of DATA frames (digest of a first fragment, data), the sequence
-- ranges of ACK, NACK and GONE, and the keyed trailer (GCM tag, previous
-- chain hash, signature, send time, MAC; encrypted records are shown as
-- ciphertext). A datagram that does not start with "MCST" is a plain
-- datagram and is shown with its text. The frames of mcast-bridge's udp://
-- tunnel ("MCTN", lib/bridge/tunnel.ts) are shown too, with the datagram
-- each DATUM carries dissected in turn.
--
-- Load it with `wireshark -X lua_script:tools/mcast.lua` (or tshark), or
-- copy it into the personal Lua plugins folder (Help > About Wireshark >
-- Folders), e.g. ~/.local/lib/wireshark/plugins/.
--
-- It claims UDP port 10000 (the tools' default; preference `mcast.port`,
-- 0 for none) for everything, plain datagrams included, and recognises
-- frames on any other UDP port by their magic (a heuristic dissector).
--
-- Malformed or truncated frames are not errors of the dissector: the
-- problem is added as expert information (and as the field `mcast.invalid`,
-- with the reason of docs/protocol.md, "Invalid frames": version, type,
-- truncated, malformed, tag), and what cannot be decoded is shown as
-- undissected bytes. Unlike a receiver without keys, the dissector shows a
-- trailer whose length is the one the flags call for (a keyed frame); only
-- a trailer of another length is `tag`.
--
-- A new frame type is one entry of FRAME_TYPES below: its name, the flags
-- defined for it, and a body function that reads the body with a Reader
-- (TUNNEL_TYPES likewise for the tunnel; a new magic is one entry of
-- MAGICS).
--
-- Written for Wireshark 3.x/4.x (Lua 5.1-5.4): no bitwise operators.

local mcast = Proto("mcast", "mcast reliable multicast")

local MAGIC = "MCST"
local HEADER_SIZE = 24
local DEFAULT_PORT = 10000
local MAX_RANGES = 256
local MAX_RECORDS = 4096
local MAX_NAME_BYTES = 64
local DIGEST_SIZE = 32
-- Trailer parts (lib/security/guard.ts).
local TIME_SIZE = 8
local MAC_SIZE = 16
local GCM_TAG_SIZE = 16
local CHAIN_SIZE = 32
local SIGNATURE_SIZE = 64

-- Flag bits.
local FLAG = {
  retransmit = 0x01,
  final = 0x02,
  from_start = 0x04,
  encrypted = 0x08,
  chained = 0x10,
  signed = 0x20,
}

-- ---------------------------------------------------------------------------
-- Fields

local f = mcast.fields
f.magic = ProtoField.string("mcast.magic", "Magic")
f.version = ProtoField.uint8("mcast.version", "Version")
-- f.type is made below, once FRAME_TYPES gives its value names.
f.flags = ProtoField.uint8("mcast.flags", "Flags", base.HEX)
f.flag_retransmit = ProtoField.bool("mcast.flags.retransmit", "Retransmit", 8,
  nil, FLAG.retransmit, "DATA: a repair, not the first transmission")
f.flag_final = ProtoField.bool("mcast.flags.final", "Final", 8, nil, FLAG.final,
  "HEARTBEAT: the sender has nothing more to send")
f.flag_from_start = ProtoField.bool("mcast.flags.from_start", "From start", 8,
  nil, FLAG.from_start, "HELLO: everything the sender still holds")
f.flag_encrypted = ProtoField.bool("mcast.flags.encrypted", "Encrypted", 8, nil,
  FLAG.encrypted, "DATA: the records are encrypted")
f.flag_chained = ProtoField.bool("mcast.flags.chained", "Chained", 8, nil,
  FLAG.chained, "DATA: the trailer carries the previous chain hash")
f.flag_signed = ProtoField.bool("mcast.flags.signed", "Signed", 8, nil,
  FLAG.signed, "DATA: the trailer carries an Ed25519 signature")
f.tag_length = ProtoField.uint8("mcast.tag_length", "Tag length")
f.session = ProtoField.string("mcast.session", "Session")
f.seq = ProtoField.uint64("mcast.seq", "Sequence")
f.timestamp = ProtoField.uint64("mcast.timestamp", "Timestamp (µs)")
f.low = ProtoField.uint64("mcast.low", "Low")
f.record_count = ProtoField.uint16("mcast.record_count", "Record count")
f.record = ProtoField.none("mcast.record", "Record")
f.bulletin = ProtoField.uint64("mcast.record.bulletin", "Bulletin")
f.total = ProtoField.uint32("mcast.record.total", "Total")
f.offset = ProtoField.uint32("mcast.record.offset", "Offset")
f.length = ProtoField.uint16("mcast.record.length", "Length")
f.reserved = ProtoField.uint16("mcast.record.reserved", "Reserved")
f.digest = ProtoField.bytes("mcast.record.digest", "Digest (SHA-256)")
f.data = ProtoField.bytes("mcast.record.data", "Data")
f.text = ProtoField.string("mcast.record.text", "Text")
f.name_length = ProtoField.uint8("mcast.name_length", "Name length")
f.name = ProtoField.string("mcast.name", "Name")
f.range_count = ProtoField.uint16("mcast.range_count", "Range count")
f.range = ProtoField.none("mcast.range", "Range")
f.first = ProtoField.uint64("mcast.range.first", "First")
f.last = ProtoField.uint64("mcast.range.last", "Last")
f.ciphertext = ProtoField.bytes("mcast.ciphertext", "Encrypted records")
f.trailer = ProtoField.none("mcast.trailer", "Trailer")
f.gcm_tag = ProtoField.bytes("mcast.trailer.gcm_tag", "AES-GCM tag")
f.chain = ProtoField.bytes("mcast.trailer.chain",
  "Chain hash of the previous datagram")
f.signature = ProtoField.bytes("mcast.trailer.signature", "Ed25519 signature")
f.send_time = ProtoField.uint64("mcast.trailer.time", "Send time (µs)")
f.mac = ProtoField.bytes("mcast.trailer.mac", "HMAC-SHA-256 (first 16 bytes)")
f.trailer_bytes = ProtoField.bytes("mcast.trailer.bytes", "Trailer bytes")
f.plain = ProtoField.string("mcast.plain", "Plain datagram")
f.plain_bytes = ProtoField.bytes("mcast.plain_bytes", "Plain datagram (bytes)")
f.invalid = ProtoField.string("mcast.invalid", "Invalid")
f.undissected = ProtoField.bytes("mcast.undissected", "Undissected")

-- Expert information, one per reason `mcast-recv` counts.
local ex = {
  version = ProtoExpert.new("mcast.version.unknown", "Unknown version",
    expert.group.UNDECODED, expert.severity.WARN),
  type = ProtoExpert.new("mcast.type.unknown", "Unknown frame type",
    expert.group.UNDECODED, expert.severity.WARN),
  truncated = ProtoExpert.new("mcast.truncated", "Truncated frame",
    expert.group.MALFORMED, expert.severity.ERROR),
  malformed = ProtoExpert.new("mcast.malformed", "Malformed frame",
    expert.group.MALFORMED, expert.severity.ERROR),
  tag = ProtoExpert.new("mcast.tag", "Tag length does not match the flags",
    expert.group.MALFORMED, expert.severity.ERROR),
}
mcast.experts = { ex.version, ex.type, ex.truncated, ex.malformed, ex.tag }

-- ---------------------------------------------------------------------------
-- Reading: a Reader walks a body and raises an Invalid (caught by the
-- dissector) where the frame is truncated or malformed.

local Invalid = {}
Invalid.__index = Invalid

local function invalid(reason, message, item)
  error(setmetatable({ reason = reason, message = message, item = item },
    Invalid), 0)
end

local TWO_32 = 4294967296
local MAX_HIGH = 0x1fffff -- a u64 above 2^53-1 is malformed

local Reader = {}
Reader.__index = Reader

local function new_reader(tvb, tree, at, stop)
  return setmetatable({ tvb = tvb, tree = tree, at = at, stop = stop },
    Reader)
end

function Reader:left()
  return self.stop - self.at
end

-- The next `size` bytes as a TvbRange, or truncated.
function Reader:take(size, what)
  if size > self:left() then
    invalid("truncated", string.format(
      "%s needs %d bytes, %d left", what, size, self:left()))
  end
  local range = self.tvb(self.at, size)
  self.at = self.at + size
  return range
end

-- Adds an unsigned field of `size` bytes and returns its value (a Lua number).
function Reader:uint(field, size, what, tree)
  local range = self:take(size, what)
  local item = (tree or self.tree):add(field, range)
  if size == 8 then
    local value = range:uint64()
    local high, low = value:higher(), value:lower()
    if high > MAX_HIGH then
      invalid("malformed", what .. " above 2^53-1", item)
    end
    return high * TWO_32 + low, item
  end
  return range:uint(), item
end

-- Whether `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
local function is_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local extra, min
    if c < 0x80 then
      extra = 0
    elseif c >= 0xc2 and c <= 0xdf then
      extra, min = 1, 0x80
    elseif c >= 0xe0 and c <= 0xef then
      extra, min = 2, 0x800
    elseif c >= 0xf0 and c <= 0xf4 then
      extra, min = 3, 0x10000
    else
      return false
    end
    if extra > 0 then
      if i + extra > n then return false end
      local cp = c % (2 ^ (6 - extra))
      for k = 1, extra do
        local b = s:byte(i + k)
        if b < 0x80 or b > 0xbf then return false end
        cp = cp * 64 + (b - 0x80)
      end
      if cp < min or cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff) then
        return false
      end
    end
    i = i + extra + 1
  end
  return true
end

local function date_of(micros)
  local seconds = math.floor(micros / 1000000)
  return os.date("!%Y-%m-%dT%H:%M:%S", seconds) ..
      string.format(".%06dZ", micros - seconds * 1000000)
end

local function decimal(n)
  return string.format("%.0f", n)
end

-- The name of ACK, NACK, HELLO and BYE.
function Reader:name(info)
  local size, item = self:uint(f.name_length, 1, "name length")
  if size == 0 or size > MAX_NAME_BYTES then
    invalid("malformed", "name length " .. size .. " is not 1-64", item)
  end
  local range = self:take(size, "name")
  local bytes = range:raw()
  local name_item = self.tree:add(f.name, range, bytes)
  if not is_utf8(bytes) then
    invalid("malformed", "name is not UTF-8", name_item)
  end
  info[#info + 1] = "name=" .. bytes
end

-- A range count and its ranges (ACK, NACK, GONE).
function Reader:ranges(info)
  local count, item = self:uint(f.range_count, 2, "range count")
  if count > MAX_RANGES then
    invalid("malformed", count .. " ranges, more than 256", item)
  end
  local shown = {}
  for k = 1, count do
    local sub = self.tree:add(f.range, self.tvb(self.at,
      math.min(16, self:left())))
    sub:append_text(" " .. k)
    local first = self:uint(f.first, 8, "range " .. k .. " first", sub)
    local last, last_item = self:uint(f.last, 8, "range " .. k .. " last", sub)
    sub:append_text(": " .. decimal(first) .. "-" .. decimal(last))
    if last < first then
      invalid("malformed", "range " .. k .. " ends before it starts", last_item)
    end
    shown[#shown + 1] = decimal(first) .. "-" .. decimal(last)
  end
  if count > 0 then info[#info + 1] = "ranges=" .. table.concat(shown, ",") end
end

-- A timestamp and low (DATA, HEARTBEAT).
function Reader:timestamp_low(info)
  local ts, item = self:uint(f.timestamp, 8, "timestamp")
  item:append_text(" (" .. date_of(ts) .. ")")
  local low = self:uint(f.low, 8, "low")
  info[#info + 1] = "low=" .. decimal(low)
end

-- One DATA record.
function Reader:record(k, info)
  local start = self.at
  local sub = self.tree:add(f.record, self.tvb(start, math.min(20,
    self:left())))
  local what = "record " .. k
  local bulletin = self:uint(f.bulletin, 8, what .. " bulletin", sub)
  local total = self:uint(f.total, 4, what .. " total", sub)
  local offset = self:uint(f.offset, 4, what .. " offset", sub)
  local length = self:uint(f.length, 2, what .. " length", sub)
  local reserved, reserved_item = self:uint(f.reserved, 2,
    what .. " reserved", sub)
  sub:append_text(string.format(" %d: bulletin %s, %d-%d of %d", k,
    decimal(bulletin), offset, offset + length, total))
  if reserved ~= 0 then
    invalid("malformed", what .. " reserved field is not 0", reserved_item)
  end
  if offset + length > total then
    invalid("malformed", what .. " ends beyond its bulletin's total", sub)
  end
  if offset == 0 and length < total then
    sub:add(f.digest, self:take(DIGEST_SIZE, what .. " digest"))
  end
  local range = self:take(length, what .. " data")
  sub:set_len(self.at - start)
  if length > 0 then
    sub:add(f.data, range)
    local bytes = range:raw()
    if is_utf8(bytes) then sub:add(f.text, range, bytes) end
  end
  if length == total then
    info[#info + 1] = "bulletin " .. decimal(bulletin)
  else
    info[#info + 1] = string.format("bulletin %s [%d-%d/%d]",
      decimal(bulletin), offset, offset + length, total)
  end
end

-- ---------------------------------------------------------------------------
-- Bodies: each reads the body of its type from the Reader `r` (header
-- already read: r.flags, r.seq) and adds to `info`, the Info column's parts.

local function data_body(r, info)
  r:timestamp_low(info)
  if r.flags % (FLAG.encrypted * 2) >= FLAG.encrypted then
    -- The record count and records, encrypted (the GCM tag is the
    -- trailer's first part).
    if r:left() > 0 then r.tree:add(f.ciphertext, r:take(r:left(), "")) end
    info[#info + 1] = "encrypted"
    return
  end
  if r.seq == 0 then
    invalid("malformed", "a DATA frame's sequence number starts at 1")
  end
  local count, item = r:uint(f.record_count, 2, "record count")
  if count > MAX_RECORDS then
    invalid("malformed", count .. " records, more than 4096", item)
  end
  for k = 1, count do r:record(k, info) end
end

local function feedback_body(r, info)
  r:name(info)
  r:ranges(info)
end

local function heartbeat_body(r, info)
  r:timestamp_low(info)
end

local function name_body(r, info)
  r:name(info)
end

local function gone_body(r, info)
  r:ranges(info)
end

-- The frame types: code → name, the flags defined for it, its body. A new
-- type is one more entry here (and a body function above).
local FRAME_TYPES = {
  [1] = { name = "DATA", body = data_body,
    flags = { "retransmit", "encrypted", "chained", "signed" } },
  [2] = { name = "ACK", body = feedback_body },
  [3] = { name = "NACK", body = feedback_body },
  [4] = { name = "HEARTBEAT", body = heartbeat_body, flags = { "final" } },
  [5] = { name = "HELLO", body = name_body, flags = { "from_start" } },
  [6] = { name = "BYE", body = name_body },
  [7] = { name = "GONE", body = gone_body },
}

local type_names = {}
for code, entry in pairs(FRAME_TYPES) do type_names[code] = entry.name end
f.type = ProtoField.uint8("mcast.type", "Type", base.DEC, type_names)

-- ---------------------------------------------------------------------------
-- The trailer (lib/security/guard.ts `trailerSize`).

local function has(flags, bit)
  return flags % (bit * 2) >= bit
end

local function trailer_size(flags, type_code)
  local size = TIME_SIZE + MAC_SIZE
  if type_code == 1 then
    if has(flags, FLAG.encrypted) then size = size + GCM_TAG_SIZE end
    if has(flags, FLAG.chained) then size = size + CHAIN_SIZE end
    if has(flags, FLAG.signed) then size = size + SIGNATURE_SIZE end
  end
  return size
end

local function dissect_trailer(tvb, tree, at, size, flags, type_code)
  local sub = tree:add(f.trailer, tvb(at, size))
  sub:append_text(" (" .. size .. " bytes)")
  if size ~= trailer_size(flags, type_code) then
    sub:add(f.trailer_bytes, tvb(at, size))
    return
  end
  local function part(field, length)
    local range = tvb(at, length)
    at = at + length
    return sub:add(field, range)
  end
  if type_code == 1 then
    if has(flags, FLAG.encrypted) then part(f.gcm_tag, GCM_TAG_SIZE) end
    if has(flags, FLAG.chained) then part(f.chain, CHAIN_SIZE) end
    if has(flags, FLAG.signed) then part(f.signature, SIGNATURE_SIZE) end
  end
  local time_range = tvb(at, TIME_SIZE)
  local item = part(f.send_time, TIME_SIZE)
  local value = time_range:uint64()
  item:append_text(" (" .. date_of(value:higher() * TWO_32 + value:lower())
    .. ")")
  part(f.mac, MAC_SIZE)
end

-- ---------------------------------------------------------------------------
-- The dissector

local function report(tree, problem, info)
  local item = problem.item or tree
  tree:add(f.invalid, problem.reason):set_generated()
  item:add_proto_expert_info(ex[problem.reason], problem.message)
  info[#info + 1] = "[" .. problem.reason .. ": " .. problem.message .. "]"
end

-- Runs `dissect`; an Invalid it raises is reported, and the bytes not yet
-- read shown undissected. Other errors propagate.
local function dissect_guarded(tvb, root, r, info, dissect)
  local ok, problem = pcall(dissect)
  if not ok then
    if getmetatable(problem) ~= Invalid then error(problem, 0) end
    report(root, problem, info)
    if r.at < r.stop then
      root:add(f.undissected, tvb(r.at, r.stop - r.at))
    end
  end
end

-- Reads the body of a frame of type `entry`, to its last byte.
local function read_body(entry, r, info)
  entry.body(r, info)
  if r:left() > 0 then
    invalid("malformed", r:left() .. " bytes after the last field")
  end
end

local function dissect_plain(tvb, tree)
  local length = tvb:len()
  local item = tree:add(mcast, tvb())
  local bytes = length > 0 and tvb():raw() or ""
  if length == 0 then
    item:add(f.plain, "")
    item:append_text(", plain, empty")
    return "plain (empty)"
  elseif is_utf8(bytes) then
    item:add(f.plain, tvb(), bytes)
    item:append_text(", plain: " .. bytes)
    return "plain: " .. bytes
  else
    item:add(f.plain_bytes, tvb())
    item:append_text(", plain (" .. length .. " bytes, not UTF-8)")
    return "plain (" .. length .. " bytes, not UTF-8)"
  end
end

local function flag_fields(entry)
  local set = {}
  for _, name in ipairs(entry and entry.flags or {}) do set[name] = true end
  return set
end

local FLAG_FIELDS = {
  { "retransmit", f.flag_retransmit }, { "final", f.flag_final },
  { "from_start", f.flag_from_start }, { "encrypted", f.flag_encrypted },
  { "chained", f.flag_chained }, { "signed", f.flag_signed },
}

-- Dissects a frame into `tree`; returns the text for the Info column.
local function dissect_frame(tvb, pinfo, tree)
  local length = tvb:len()
  local root = tree:add(mcast, tvb())
  local info = {}
  local r = new_reader(tvb, root, 0, length)
  r.pinfo = pinfo
  local entry, trailer
  dissect_guarded(tvb, root, r, info, function()
    r:take(4, "magic")
    root:add(f.magic, tvb(0, 4))
    if length < 6 then
      invalid("truncated", length .. " bytes, less than the magic, version " ..
        "and type")
    end
    local version, version_item = r:uint(f.version, 1, "version")
    local type_code, type_item = r:uint(f.type, 1, "type")
    if version ~= 1 then
      info[#info + 1] = "version " .. version
      invalid("version", "version " .. version .. ", not 1", version_item)
    end
    entry = FRAME_TYPES[type_code]
    info[#info + 1] = entry and entry.name or ("type " .. type_code)
    if not entry then
      invalid("type", "type " .. type_code .. " is not a frame type", type_item)
    end
    if length < HEADER_SIZE then
      invalid("truncated", length .. " bytes, less than the 24-byte header")
    end
    local flags, flags_item = r:uint(f.flags, 1, "flags")
    r.flags = flags
    local defined = flag_fields(entry)
    for _, pair in ipairs(FLAG_FIELDS) do
      if has(flags, FLAG[pair[1]]) or defined[pair[1]] then
        flags_item:add(pair[2], tvb(6, 1))
      end
      if has(flags, FLAG[pair[1]]) then info[#info + 1] = pair[1] end
    end
    local tag, tag_item = r:uint(f.tag_length, 1, "tag length")
    local session_range = r:take(8, "session")
    local session = session_range:bytes():tohex():lower()
    root:add(f.session, session_range, session)
    r.seq = r:uint(f.seq, 8, "sequence")
    table.insert(info, 2, "session=" .. session .. " seq=" .. decimal(r.seq))
    root:append_text(", " .. entry.name .. ", seq " .. decimal(r.seq))
    if tag > 0 then
      if length < HEADER_SIZE + tag then
        invalid("truncated", "a " .. tag .. "-byte trailer does not fit",
          tag_item)
      end
      r.stop = length - tag
      trailer = { size = tag, flags = flags, type_code = type_code }
      local expected = trailer_size(flags, type_code)
      if tag ~= expected then
        -- Reported, and the body is still shown.
        report(root, {
          reason = "tag", item = tag_item,
          message = string.format("tag length %d, the flags call for %d",
            tag, expected),
        }, info)
      end
    end
    read_body(entry, r, info)
  end)
  if trailer then
    dissect_trailer(tvb, root, r.stop, trailer.size, trailer.flags,
      trailer.type_code)
  end
  return table.concat(info, " ")
end

-- ---------------------------------------------------------------------------
-- The bridge tunnel: what two mcast-bridge processes exchange over a
-- udp:// leg (lib/bridge/tunnel.ts). Its frames start with "MCTN":
--
--   0 magic "MCTN" | 4 version 1 | 5 type | 6 hops (DATUM) or 0 |
--   7 trailer length (24) | 8 link id (8 bytes) | 16 seq (u64) | 24 body |
--   trailer: send time (u64, µs) and HMAC-SHA-256 (first 16 bytes)
--
-- DATUM (1): low (u64, the lowest number the near end still waits on),
-- pipe id length (u8), pipe id (UTF-8), then the datagram that crosses,
-- verbatim (dissected as mcast in turn). HELD (2): range count (u16) and
-- ranges: the far side holds the link's datagrams up to seq and those
-- ranges. REPORT (3, seq 0): a frame without a trailer, to the end
-- (dissected as mcast in turn): a far receiver's HELLO, ACK or BYE named
-- "NAME via FAR-BRIDGE", or the far bridge's NACK of what it misses. (docs/protocol.md, "Bridge tunnel", on the bridge branch.)

local TUNNEL_MAGIC = "MCTN"
local TUNNEL_TRAILER_SIZE = TIME_SIZE + MAC_SIZE

f.tunnel_hops = ProtoField.uint8("mcast.tunnel.hops", "Hops left")
f.tunnel_link = ProtoField.string("mcast.tunnel.link", "Link")
f.tunnel_seq = ProtoField.uint64("mcast.tunnel.seq", "Number on the link")
f.tunnel_low = ProtoField.uint64("mcast.tunnel.low",
  "Lowest number not yet held")
f.tunnel_id_length = ProtoField.uint8("mcast.tunnel.id_length",
  "Pipe id length")
f.tunnel_id = ProtoField.string("mcast.tunnel.id", "Pipe id")
f.tunnel_datagram = ProtoField.bytes("mcast.tunnel.datagram",
  "Datagram crossing")

local dissect_datagram -- below: a frame or a plain datagram

local function datum_body(r, info)
  if r.seq == 0 then
    invalid("malformed", "a DATUM's number on its link starts at 1")
  end
  local low, low_item = r:uint(f.tunnel_low, 8, "low")
  if low < 1 or low > r.seq then
    invalid("malformed", "low " .. decimal(low) .. " is not 1-" ..
      decimal(r.seq), low_item)
  end
  info[#info + 1] = "low=" .. decimal(low)
  local size = r:uint(f.tunnel_id_length, 1, "pipe id length")
  local range = r:take(size, "pipe id")
  local id = size > 0 and range:raw() or ""
  local item = r.tree:add(f.tunnel_id, range, id)
  if not is_utf8(id) then invalid("malformed", "pipe id is not UTF-8", item) end
  info[#info + 1] = "id=" .. id
  local left = r:left()
  if left == 0 then
    info[#info + 1] = "(empty datagram)"
    return
  end
  local inner = r:take(left, "datagram")
  r.tree:add(f.tunnel_datagram, inner)
  info[#info + 1] = "[" .. dissect_datagram(inner:tvb(), r.pinfo, r.tree) ..
      "]"
end

local function held_body(r, info)
  r:ranges(info)
end

local function report_body(r, info)
  local left = r:left()
  if left == 0 then invalid("truncated", "a REPORT without its frame") end
  local inner = r:take(left, "report")
  info[#info + 1] = "[" .. dissect_datagram(inner:tvb(), r.pinfo, r.tree) ..
      "]"
end

-- The tunnel's frame types, as FRAME_TYPES.
local TUNNEL_TYPES = {
  [1] = { name = "DATUM", body = datum_body },
  [2] = { name = "HELD", body = held_body },
  [3] = { name = "REPORT", body = report_body },
}

local tunnel_type_names = {}
for code, entry in pairs(TUNNEL_TYPES) do tunnel_type_names[code] = entry.name end
f.tunnel_type = ProtoField.uint8("mcast.tunnel.type", "Tunnel frame type",
  base.DEC, tunnel_type_names)

local function dissect_tunnel(tvb, pinfo, tree)
  local length = tvb:len()
  local root = tree:add(mcast, tvb())
  root:append_text(", bridge tunnel")
  local info = { "TUNNEL" }
  local r = new_reader(tvb, root, 0, length)
  r.pinfo = pinfo
  local trailer = false
  dissect_guarded(tvb, root, r, info, function()
    root:add(f.magic, r:take(4, "magic"))
    if length < 6 then
      invalid("truncated", length .. " bytes, less than the magic, version " ..
        "and type")
    end
    local version, version_item = r:uint(f.version, 1, "version")
    local type_code, type_item = r:uint(f.tunnel_type, 1, "type")
    if version ~= 1 then
      invalid("version", "tunnel version " .. version .. ", not 1",
        version_item)
    end
    local entry = TUNNEL_TYPES[type_code]
    info[#info + 1] = entry and entry.name or ("type " .. type_code)
    if not entry then
      invalid("type", "type " .. type_code .. " is not a tunnel frame type",
        type_item)
    end
    if length < HEADER_SIZE then
      invalid("truncated", length .. " bytes, less than the 24-byte header")
    end
    local hops = r:uint(f.tunnel_hops, 1, "hops")
    local tag, tag_item = r:uint(f.tag_length, 1, "tag length")
    local link_range = r:take(8, "link")
    local link = link_range:bytes():tohex():lower()
    root:add(f.tunnel_link, link_range, link)
    r.seq = r:uint(f.tunnel_seq, 8, "number on the link")
    info[#info + 1] = "link=" .. link .. " seq=" .. decimal(r.seq)
    if type_code == 1 then info[#info + 1] = "hops=" .. hops end
    root:append_text(", " .. entry.name .. ", seq " .. decimal(r.seq))
    if tag > 0 then
      if tag ~= TUNNEL_TRAILER_SIZE then
        invalid("tag", "tag length " .. tag .. ", not 24", tag_item)
      end
      if length < HEADER_SIZE + tag then
        invalid("truncated", "a 24-byte trailer does not fit", tag_item)
      end
      r.stop = length - tag
      trailer = true
    end
    read_body(entry, r, info)
  end)
  if trailer then
    dissect_trailer(tvb, root, r.stop, TUNNEL_TRAILER_SIZE, 0, 0)
  end
  return table.concat(info, " ")
end

-- ---------------------------------------------------------------------------
-- Registration

-- The dissector of each magic.
local MAGICS = { [MAGIC] = dissect_frame, [TUNNEL_MAGIC] = dissect_tunnel }

dissect_datagram = function(tvb, pinfo, tree)
  local dissect = tvb:len() >= 4 and MAGICS[tvb(0, 4):raw()]
  if dissect then return dissect(tvb, pinfo, tree) end
  return dissect_plain(tvb, tree)
end

function mcast.dissector(tvb, pinfo, tree)
  pinfo.cols.protocol = "MCAST"
  pinfo.cols.info = dissect_datagram(tvb, pinfo, tree)
  return tvb:len()
end

-- Any UDP port: frames and tunnel frames by their magic (plain datagrams
-- only on the port).
local function heuristic(tvb, pinfo, tree)
  if tvb:len() < 4 or not MAGICS[tvb(0, 4):raw()] then return false end
  mcast.dissector(tvb, pinfo, tree)
  return true
end
mcast:register_heuristic("udp", heuristic)

-- ---------------------------------------------------------------------------
-- The port preference

mcast.prefs.port = Pref.uint("UDP port", DEFAULT_PORT,
  "UDP port of the group: every datagram on it is mcast, plain ones too " ..
  "(0: none; frames are recognised on any port by their magic)")

local udp_port = DissectorTable.get("udp.port")
local registered = 0

local function register_port()
  if registered ~= 0 then udp_port:remove(registered, mcast) end
  registered = mcast.prefs.port
  if registered ~= 0 then udp_port:add(registered, mcast) end
end

function mcast.prefs_changed()
  if mcast.prefs.port ~= registered then register_port() end
end

register_port()
