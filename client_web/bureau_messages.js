// The schedule API's error codes and fields in the administrator's language (i18n.js, "bu.field.*",
// "bu.reason.*", "bu.code.*": zh-CN by default, en). The server's developer message is never
// shown; an unknown code shows its code (so a support call can name it) with a generic sentence.

import { has, t } from "./i18n.js";

// The form's name of an API field ("lead_classroom_id" → "主讲课堂" / "Lead classroom").
export function fieldLabel(field) {
  return has(`bu.field.${field}`) ? t(`bu.field.${field}`) : field;
}

// "主讲课堂：请选择一项" / "Lead classroom: choose one" — the field first when the server named one.
export function explain(err) {
  const field = err.field || err.details?.field;
  const reason = err.details?.reason;
  const code = (c) => (has(`bu.code.${c}`) ? t(`bu.code.${c}`) : null);
  let text = code(err.code);
  if (err.code === "invalid_field" || (err.code === "invalid_time" && reason)) {
    text = reason && has(`bu.reason.${reason}`) ? t(`bu.reason.${reason}`)
      : (err.code === "invalid_time" ? t("bu.code.invalid_time") : t("bu.invalid_value"));
  }
  if (!text) text = t("bu.failed", { code: err.code });
  if (err.code === "invalid_time" && !reason && field) text = t("bu.invalid_datetime");
  return field ? t("bu.field_error", { field: fieldLabel(field), text }) : text;
}
