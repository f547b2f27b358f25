-- Argo CD health check for dockersocket.io/DockerSocketPolicy.
-- Install under argocd-cm `resource.customizations.health.dockersocket.io_DockerSocketPolicy`
-- (see argocd-cm-health.yaml and docs/gitops.md). Tested by tests/unit/test_gitops.py.
--
-- The operator publishes kstatus-style conditions: Ready (every matching node runs an
-- up-to-date, ready proxy), Progressing/Reconciling, Degraded, Stalled (invalid policy).
local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  if text == "" then
    return fallback
  end
  return text
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile the policy"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to see generation " .. tostring(generation)
  return hs
end

local ready = condition("Ready")
local stalled = condition("Stalled")
local degraded = condition("Degraded")

-- An invalid policy (Stalled) or a failed apply / no matching node (Degraded) needs a human.
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Policy is invalid")
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "Policy is degraded")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Proxies ready")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Waiting for the proxies")
return hs
