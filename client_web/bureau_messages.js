// The schedule API's error codes and fields in the administrator's language: Chinese first,
// English beside it. The server's developer message is never shown; an unknown code shows
// its code (so a support call can name it) with a generic sentence.

export const FIELDS = {
  subject: "学科 Subject",
  title: "课题 Title",
  lead_classroom_id: "主讲课堂 Lead classroom",
  lead_teacher_id: "主讲教师 Lead teacher",
  remote_classroom_ids: "接收课堂 Remote classrooms",
  start: "开始时间 Start",
  end: "结束时间 End",
  recording: "录制 Recording",
  recurrence: "每周重复 Weekly repeat",
  "recurrence.until": "重复至 Weekly until",
  "recurrence.exceptions": "停课日期 Exceptions",
  "recurrence.frequency": "重复方式 Frequency",
  name: "名称 Name",
  school_id: "学校 School",
  classroom_id: "课堂 Classroom",
  kind: "设备类型 Kind",
  lead_capable: "可作主讲 Lead-capable",
  date: "日期 Date",
  dry_run: "预检 Dry run",
};

const REASONS = {
  required: "不能为空 is required",
  too_long: "太长 is too long",
  text: "含有无效字符 contains invalid characters",
  id: "请选择一项 choose one",
  bool: "须为是或否 must be yes or no",
  choice: "取值无效 is not one of the choices",
  unknown: "不是可识别的字段 is not a known field",
  list: "须为课堂列表 must be a list of classrooms",
  too_many: "课堂太多（最多 50 个）too many (at most 50)",
  duplicate: "同一课堂选了两次 lists a classroom twice",
  lead: "主讲课堂不能同时作为接收课堂 the lead classroom cannot also be a remote",
  order: "须晚于开始时间 must be after the start",
  before_start: "不能早于第一次上课 must not be before the first lesson",
  object: "格式无效 is malformed",
};

const CODES = {
  invalid_time: "时间无效 invalid time",
  no_remote_classroom: "请至少选择一个接收课堂 choose at least one remote classroom",
  unknown_classroom: "课堂不存在（可能已被删除）the classroom does not exist (deleted?)",
  unknown_teacher: "教师不存在（可能已被删除）the teacher does not exist (deleted?)",
  unknown_school: "学校不存在（可能已被删除）the school does not exist (deleted?)",
  not_lead_capable: "该课堂是接收课堂，不能主讲 this is a remote classroom: it cannot lead",
  conflict: "时间冲突 scheduling conflict",
  lesson_cancelled: "课程已取消，不能修改 the lesson is cancelled",
  occurrence_started: "这次课已开始，不能取消 this lesson has already begun",
  in_use: "仍在使用中，不能删除 still in use: cannot delete",
  self_revoke: "不能吊销自己的密钥（请另一位管理员操作）you cannot revoke your own key",
  already_revoked: "已吊销 already revoked",
  unauthorized: "密钥无效或已吊销，请重新登录 invalid or revoked key: log in again",
  not_found: "找不到（可能已被删除）not found (deleted?)",
  rate_limited: "尝试过于频繁，请稍后再试 too many attempts: try again shortly",
  body_too_large: "文件太大（最大 1 MiB）the file is too large (1 MiB at most)",
  bad_json: "请求格式无效 malformed request",
  csv_encoding: "文件不是 UTF-8 编码：请另存为“CSV UTF-8” the file is not UTF-8: save it as “CSV UTF-8”",
  csv_header: "首行须为列名 school,classroom,role the header row must be school,classroom,role",
  csv_empty: "文件为空 the file is empty",
  csv_syntax: "文件不是有效的 CSV the file is not valid CSV",
  csv_too_many_rows: "行数太多（最多 2000 行）too many rows (2000 at most)",
  internal: "服务器出错，请稍后再试 server error: try again later",
};

// "主讲课堂 Lead classroom：请选择一项 choose one" — the field first when the server named one.
export function explain(err) {
  const field = err.field || err.details?.field;
  const label = field ? FIELDS[field] || field : null;
  const reason = err.details?.reason;
  let text = CODES[err.code];
  if (err.code === "invalid_field" || (err.code === "invalid_time" && reason)) {
    text = REASONS[reason] || (err.code === "invalid_time" ? CODES.invalid_time : "取值无效 invalid value");
  }
  if (!text) text = `操作失败 the request failed (${err.code})`;
  if (err.code === "invalid_time" && !reason && field) text = "时间格式无效 invalid date or time";
  return label ? `${label}：${text}` : text;
}
