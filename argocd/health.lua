-- Argo CD health check for attention.tech/AttentionUser, read from its Ready condition.
-- Argo CD runs it with Lua 5.1 (gopher-lua) and the live object in `obj`: any field may be
-- missing or of an unexpected type, so every access is checked and nothing here can error.
local hs = { status = "Progressing", message = "" }

-- Ready reasons that cannot succeed until someone changes the spec (or frees the email).
local needs_a_change = {
  InvalidSpec = true,
  Rejected = true,
  UserMissing = true,
  Conflict = true,
  Drifted = true,
  AdoptionRefused = true,
  NotPresent = true,
}

local function table_or_empty(value)
  if type(value) == "table" then
    return value
  end
  return {}
end

local function ready_condition(status)
  for _, condition in ipairs(table_or_empty(status.conditions)) do
    if type(condition) == "table" and condition.type == "Ready" then
      return condition
    end
  end
  return nil
end

local function message_of(condition, fallback)
  if type(condition.message) == "string" and condition.message ~= "" then
    return condition.message
  end
  return fallback
end

local metadata = table_or_empty(obj.metadata)
local annotations = table_or_empty(metadata.annotations)
local status = obj.status

if annotations["attention.tech/paused"] == "true" then
  hs.status = "Suspended"
  hs.message = "paused by the attention.tech/paused annotation"
  return hs
end

if type(status) ~= "table" then
  hs.message = "waiting for the operator to report a status"
  return hs
end

local generation = metadata.generation
local observed = status.observedGeneration
if type(generation) == "number" and (type(observed) ~= "number" or observed < generation) then
  hs.message = "waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = ready_condition(status)
if ready == nil then
  hs.message = "waiting for the operator to report the Ready condition"
  return hs
end

local reason = ready.reason
if reason == "Paused" then
  hs.status = "Suspended"
  hs.message = message_of(ready, "paused")
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message_of(ready, "the user exists in Attention")
elseif ready.status == "False" and needs_a_change[reason] then
  hs.status = "Degraded"
  hs.message = message_of(ready, tostring(reason))
else
  hs.status = "Progressing"
  hs.message = message_of(ready, "not ready yet: " .. tostring(reason))
end
return hs
