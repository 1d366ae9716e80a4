// One message dictionary for the classroom pages: zh-CN (the default) and en. Every label a page
// shows and every error code the server can send a page (docs/protocol.md, "Error codes"; the
// floor's bad_state / floor_full / unknown_classroom; the recordings' HTTP errors) has an entry
// here, so no page shows a developer's English message to a teacher.
//
// Language: ?lang=en|zh-CN on the URL, else the choice made with the page's toggle (kept in
// localStorage), else the browser's language (English → en), else zh-CN.
// Markup: data-i18n="key" sets textContent, data-i18n-title / data-i18n-aria-label set those
// attributes; applyI18n() fills them, and again after setLang(). Pages re-render their own
// dynamic text on the "langchange" event of `i18nEvents`.

export const LANGS = ["zh-CN", "en"];
const STORE_KEY = "classroom.lang";

const zh = {
  // common
  "state.connecting": "连接中", "state.joined": "已连接", "state.reconnecting": "重连中",
  "state.left": "已离开", "state.ended": "已下课",
  "lesson.default": "课堂",
  "lang.toggle": "EN", "lang.toggle.title": "Switch the page to English",
  "no_token": "链接中缺少加入令牌：请向教育局索取本课堂的链接。",
  "cannot_join": "无法加入：{reason}",
  "replaced": "本课堂已在另一处打开，本页已断开。",
  "lesson_ended.by": "本节课已由{name}结束，谢谢参与。",
  "lesson_ended": "本节课已结束，谢谢参与。",
  "camera_unavailable": "无法打开摄像头或麦克风：{reason}",
  "recording.link": "录像回放", "recording.link.title": "本节课的录像（课后 30 天内可看）",
  "recording.on": "● 录制中", "recording.on.title": "本节课正在录制",
  "net.title": "网络", "net.good": "网络良好", "net.fair": "网络一般", "net.poor": "网络较差",
  "you": "本班",
  "link.estimate": "带宽估计 {v} kbit/s", "link.sent": "发送 {v} kbit/s", "link.loss": "丢包 {v} %",
  "link.rtt": "往返 {v} ms", "link.up_loss": "上行丢包 {v} %", "link.up_estimate": "上行带宽估计 {v} kbit/s",
  "link.paused": "{n} 路视频已暂停（声音照常）",
  // lead
  "lead.title": "主讲课堂",
  "live.off": "未开播", "live.on": "● 直播中 LIVE",
  "viewers": "{n} 个课堂在看",
  "screen.share": "共享课件", "screen.stop": "停止共享",
  "students.on": "学生区摄像头", "students.off": "关闭学生区",
  "screen.error": "无法共享屏幕：{reason}", "students.error": "无法打开学生区设备：{reason}",
  "queue.title": "举手队列", "queue.empty": "暂无举手",
  "absent.title": "未到课堂", "absent.none": "应到课堂已全部到齐",
  "grant": "连麦", "revoke": "下麦", "mute": "静音", "unmute": "取消静音",
  "spot": "聚焦", "spot.on": "★ 已聚焦", "spot.clear": "取消聚焦",
  "spot.title": "让所有远端课堂看到该课堂", "spot.on.title": "已聚焦：再点一次取消",
  "tile.hand": "已举手", "tile.muted": "已静音", "tile.floor": "发言中", "tile.speaking": "正在说话",
  "timer.title": "上课时长",
  "end": "结束课程", "end.confirm": "结束本节课？所有课堂将断开连接，不能再加入本节课。",
  "end.cancel": "取消", "end.ok": "结束课程",
  "help.button": "快捷键", "help.title": "键盘快捷键", "help.close": "关闭",
  "key.g": "给举手队列中的第一个课堂连麦",
  "key.r": "让正在发言的课堂下麦",
  "key.digit": "给第 1–9 个课堂连麦 / 下麦（再按一次下麦）",
  "key.s": "聚焦 / 取消聚焦正在发言的课堂",
  "key.help": "显示 / 隐藏本帮助",
  "key.esc": "关闭对话框",
  // remote
  "remote.title": "听讲课堂",
  "floor.banner": "本班正在发言",
  "hand.raise": "举手", "hand.lower": "放下手",
  "spot.label": "发言课堂：{name}",
  "fullscreen": "全屏", "fullscreen.exit": "退出全屏",
  "volume": "音量", "volume.title": "主讲课堂的音量",
  "mic.on": "话筒开", "mic.off": "话筒已关",
  "mic.title": "关闭 / 打开本班的话筒（连麦时其他课堂听得到本班）",
  "muted_by_lead": "主讲老师已将本班静音",
  "audio.unlock": "点击开启声音", "audio.unlock.title": "浏览器需要点击一次才能播放课堂声音",
  "watch_only": "仅观看",
  // observer
  "observer.title": "巡课", "observer.badge": "仅观看，课堂看不到巡课",
  "notes.title": "听课记录", "notes.text": "记录", "notes.text.placeholder": "写下观察（只有听课人、教研员和授课教师能看到，课堂看不到）",
  "notes.dimension": "维度", "notes.dimension.none": "（不选维度）", "notes.score": "评分", "notes.score.none": "（不评分）",
  "notes.moment": "标记此刻", "notes.moment.marked": "★ 已标记 {t}（再点取消）",
  "notes.moment.title": "把记录定在按下的这一刻，而不是保存的时候",
  "notes.send": "保存记录", "notes.saved": "已保存，位于录像 {t}", "notes.failed": "没有保存：{reason}",
  "notes.empty_text": "请先写下记录内容。", "notes.none": "还没有记录。只有听课人能看到这些记录，课堂看不到。",
  "err.bad_field.note": "这条记录没有被接受（内容为空或太长、维度或评分不对，或标记的时刻不对）。",
  "err.forbidden.note": "只有听课人可以写听课记录。",
  "err.rate_limited.note": "记录写得太快了，请稍后再保存。",
  // playback
  "pb.title": "课堂回放", "pb.teacher": "主讲教师", "pb.screen": "课件", "pb.students": "学生",
  "pb.no_picture": "无画面", "pb.no_screen": "无课件",
  "pb.play": "▶ 播放", "pb.pause": "⏸ 暂停", "pb.speed": "速度", "pb.seek": "进度",
  "pb.timeline": "事件时间线", "pb.report": "课堂分析报告",
  "pb.no_manifest": "没有选择录像：请从教育局排课页面的录像列表，或本课堂加入链接旁的“录像回放”打开。",
  "pb.choose.title": "选择要回放的录像",
  "pb.choose.how": "回放链接由教育局管理员发放：登录教育局排课页面，在“录像”列表中点“录像回放”即可打开或复制链接（链接一小时内有效）。教师请向本校管理员索取。",
  "pb.choose.bureau": "打开教育局排课页面的录像列表", "pb.choose.home": "返回首页",
  "pb.choose.key": "教育局管理员 API 密钥（只在本页使用，不保存）", "pb.choose.list": "列出录像",
  "pb.choose.empty": "还没有可以回放的录像。", "pb.choose.report": "分析报告",
  "pb.choose.count": "共 {n} 段录像", "pb.choose.minutes": "{n} 分钟",
  "pb.load_failed": "无法加载回放：{reason}", "pb.bad_format": "录像格式不认识（{format}）",
  "pb.unavailable": "无法播放这段录像", "pb.bad_manifest": "录像的清单文件已损坏或不完整，无法读取",
  "pb.sound": "点击“播放”开启声音",
  "pbn.title": "听课记录", "pbn.observer": "听课人", "pbn.all_observers": "全部听课人", "pbn.all_dimensions": "全部维度",
  "pbn.count": "显示 {shown} / 共 {total} 条", "pbn.export": "导出 CSV", "pbn.observation": "观察记录报告",
  "pbn.add": "在当前位置添加记录", "pbn.add.placeholder": "回看时的观察，记在当前播放位置", "pbn.failed": "没有成功（{code}）",
  "ev.hand_raised": "举手", "ev.hand_lowered": "放下手", "ev.floor_granted": "授予发言",
  "ev.floor_revoked": "收回发言", "ev.spotlight": "聚焦", "ev.mute": "静音", "ev.unmute": "取消静音",
  "ev.join": "加入", "ev.leave": "离开", "ev.lesson_ended": "下课", "ev.gap": "录制中断",
  // index
  "index.title": "三个课堂 · 同步课堂",
  "index.intro": "课堂链接由教育局排课页面生成，或见服务器启动时打印的演示课链接（也写在 data/demo-links.txt）。",
  "index.bureau": "教育局排课", "index.metrics": "Prometheus 监控指标", "index.health": "健康检查",
  // bureau: the term dashboard (教研看板, bureau_analytics.js)
  "dash.tab": "教研看板",
  "dash.title": "教研看板", "dash.intro": "已分析课程的课堂行为数据：按教师、学校、远端课堂",
  "dash.from": "从", "dash.to": "到", "dash.school": "学校", "dash.teacher": "教师", "dash.subject": "学科",
  "dash.all": "全部", "dash.apply": "查询", "dash.csv": "导出 CSV：",
  "dash.csv.lessons": "每节课", "dash.csv.remote_classrooms": "远端课堂", "dash.csv.teachers": "教师",
  "dash.csv.schools": "学校",
  "dash.totals": "总览", "dash.lessons": "课数", "dash.mean_rt": "平均 Rt", "dash.mean_ch": "平均 Ch",
  "dash.teacher_share": "教师讲话占比", "dash.modes": "教学模式",
  "dash.mode.practice": "练习型", "dash.mode.lecture": "讲授型", "dash.mode.dialogue": "对话型",
  "dash.mode.mixed": "混合型",
  "dash.chart.rt_ch": "Rt / Ch 随时间变化", "dash.chart.modes": "各教师教学模式分布",
  "dash.chart.fairness": "远端课堂发言机会", "dash.chart.scores": "听评课评分",
  "dash.fairness": "远端课堂发言机会（最少被听到的在前）", "dash.classroom": "远端课堂",
  "dash.with_floor": "有发言的课", "dash.floor_share": "发言课占比", "dash.heard_min": "被听到（分钟）",
  "dash.hands": "举手 / 未回应", "dash.rarely_heard": "很少被听到",
  "dash.teachers": "教师", "dash.rt_trend": "Rt 变化（每 30 天）", "dash.no_teacher": "未指定教师",
  "dash.schools": "学校", "dash.lessons_led": "主讲课数", "dash.remote_lessons": "作为远端的课数",
  "dash.scores": "听评课评分（按维度）", "dash.dimension": "维度", "dash.count": "条数", "dash.mean": "平均分",
  "dash.spread": "标准差", "dash.no_scores": "暂无评分：听课教师在课中或回放时评分后显示在这里。",
  "dash.none": "所选范围内没有已分析的课程。", "dash.failed": "加载失败：",
  // bureau page (bureau.html, bureau*.js; "bu.*"): schedule, district set-up, recordings, links
  "bu.page_title": "教育局排课 — 三个课堂", "bu.h1": "教育局排课",
  "bu.logout": "退出", "bu.login": "登录", "bu.api_key": "管理员 API 密钥", "bu.login.invalid": "密钥无效",
  "bu.tab.schedule": "课表", "bu.tab.setup": "学区设置",
  "bu.hint.no_lead": "还没有主讲课堂：请先在“学区设置”中添加学校和课堂。",
  "bu.today": "今日课程", "bu.today.empty": "今天没有课。",
  "bu.week": "周课表", "bu.prev_week": "‹ 上周", "bu.this_week": "本周", "bu.next_week": "下周 ›",
  "bu.new_lesson": "＋ 新建课程",
  "bu.wd.0": "周一", "bu.wd.1": "周二", "bu.wd.2": "周三", "bu.wd.3": "周四", "bu.wd.4": "周五", "bu.wd.5": "周六", "bu.wd.6": "周日",
  "bu.status.scheduled": "未开始", "bu.status.live": "直播中", "bu.status.ended": "已结束", "bu.status.cancelled": "已取消",
  "bu.lead_prefix": "主讲 ", "bu.join_link": "加入链接", "bu.observer_link": "观摩链接",
  "bu.connected": "{n}/{total} 已连接", "bu.copy_links": "复制 / 打印链接",
  "bu.rec.playback": "录像回放", "bu.rec.report": "课堂分析报告", "bu.rec.analysing": "分析中…",
  "bu.choose": "— 请选择 —", "bu.no_lead": "（无主讲课堂）", "bu.hardware": "（硬件）",
  "bu.conflict": "时间冲突：", "bu.conflict.teacher": "教师 {name}", "bu.conflict.classroom": "课堂 {name}",
  "bu.choose_date": "请选择日期",
  "bu.cancel.one": "{date} 这一次", "bu.cancel.all": "整个课程", "bu.cancel.confirm": "取消《{title}》— {what}？",
  "bu.form.new": "新建课程", "bu.form.edit": "编辑课程 {id}",
  "bu.form.until": "每周重复至（可不填）", "bu.form.exceptions": "停课日期（YYYY-MM-DD，逗号分隔）",
  "bu.form.recording": "录制本节课", "bu.save": "保存", "bu.links": "加入链接", "bu.cancel_lesson": "取消课程",
  "bu.cancel_occurrence": "本周停课", "bu.close": "关闭",
  "bu.setup.empty": "新安装：先添加学校，再添加课堂和教师，或从 CSV 文件导入。",
  "bu.schools": "学校", "bu.school_name": "学校名称", "bu.add": "＋ 添加", "bu.teachers": "教师", "bu.person_name": "姓名",
  "bu.classrooms": "课堂", "bu.classroom_name": "课堂名称", "bu.role": "角色", "bu.role.lead": "主讲",
  "bu.role.lead.title": "也可接收", "bu.role.remote": "接收", "bu.kind.browser": "浏览器", "bu.kind.hardware": "硬件终端",
  "bu.import.title": "从 CSV 导入学校和课堂",
  "bu.import.help": "UTF-8 编码（Excel 另存为“CSV UTF-8”）；首行列名 school,classroom,role（可加 kind）；role 为 lead（主讲）或 remote（接收）。有问题的行不会导入，其余的行一起导入。",
  "bu.csv_file": "CSV 文件", "bu.csv_check": "预检", "bu.csv_import": "导入", "bu.csv.choose": "请选择 CSV 文件",
  "bu.csv.dry_run": "预检：{ok} 行可导入，{bad} 行有问题（不会导入）", "bu.csv.new_schools": "；将新建学校：{names}",
  "bu.csv.imported": "已导入 {rooms} 个课堂，新建 {schools} 所学校；{bad} 行未导入",
  "bu.csv.ignored": "（忽略的列：{cols}）", "bu.csv.row": "行", "bu.csv.status": "状态", "bu.csv.ok": "可导入", "bu.csv.done": "已导入 ✓",
  "bu.admins": "管理员", "bu.devices": "设备", "bu.devices.note": "（课堂电脑 / 硬件终端）", "bu.device_name": "设备名称",
  "bu.name": "名称", "bu.delete": "删除", "bu.delete.confirm": "删除 {what}？",
  "bu.school_counts": "{rooms} 个课堂 · {teachers} 名教师", "bu.me": "（我）",
  "bu.revoked": "已吊销", "bu.active": "有效", "bu.revoke": "吊销", "bu.revoke.confirm": "吊销 {name}？",
  "bu.seen.never": "从未上线", "bu.seen.offline": "离线 · 最后在线 {when}", "bu.seen.in_lesson": "上课中", "bu.seen.online": "在线",
  "bu.seen.loss": "丢包", "bu.seen.recv": "收", "bu.seen.sent": "发",
  "bu.secret.once": "{label} — 只显示这一次，请立即保存", "bu.copy": "复制",
  "bu.secret.admin": "新管理员 {name} 的 API 密钥", "bu.secret.device": "设备 {name} 的凭据",
  "bu.link.role.lead": "主讲", "bu.link.role.remote": "接收", "bu.link.role.observer": "观摩",
  "bu.links.title": "加入链接 — 《{title}》 {day}", "bu.links.valid": "有效时间 {day} {from} – {to}",
  "bu.copied": "已复制 ✓", "bu.copy_manual": "请手动复制", "bu.links.print": "打印二维码",
  "bu.sheet.opens": "开课前 15 分钟可进入",
  "bu.recs": "录像", "bu.refresh": "刷新", "bu.recs.default": "新课程默认录制", "bu.recs.lesson": "课程",
  "bu.recs.all": "全部课程", "bu.recs.empty": "还没有录像：录制的课程开始后出现在这里。",
  "bu.recs.now": "录制中", "bu.recs.complete": "完整", "bu.recs.incomplete": "未完成",
  "bu.recs.tracks": "{n} 轨", "bu.recs.no_report": "分析报告未生成", "bu.recs.kept_until": "保留至 {date}", "bu.recs.kept": "永久保留",
  "bu.recs.min": "{m} 分 {s} 秒", "bu.recs.sec": "{s} 秒",
  "bu.recs.retention": "录像保留 {days} 天", "bu.recs.forever": "录像永久保留", "bu.recs.off": "服务器已关闭录制",
  "bu.recs.guard": "录像磁盘空间不足，录制已暂停（剩余 {free}，需要 {need}）。",
  "bu.field.subject": "学科", "bu.field.title": "课题", "bu.field.lead_classroom_id": "主讲课堂",
  "bu.field.lead_teacher_id": "主讲教师", "bu.field.remote_classroom_ids": "接收课堂", "bu.field.start": "开始时间",
  "bu.field.end": "结束时间", "bu.field.recording": "录制", "bu.field.recurrence": "每周重复",
  "bu.field.recurrence.until": "重复至", "bu.field.recurrence.exceptions": "停课日期", "bu.field.recurrence.frequency": "重复方式",
  "bu.field.name": "名称", "bu.field.school_id": "学校", "bu.field.classroom_id": "课堂", "bu.field.kind": "设备类型",
  "bu.field.lead_capable": "可作主讲", "bu.field.date": "日期", "bu.field.dry_run": "预检",
  "bu.form.start": "开始", "bu.form.end": "结束",
  "bu.reason.required": "不能为空", "bu.reason.too_long": "太长", "bu.reason.text": "含有无效字符", "bu.reason.id": "请选择一项",
  "bu.reason.bool": "须为是或否", "bu.reason.choice": "取值无效", "bu.reason.unknown": "不是可识别的字段",
  "bu.reason.list": "须为课堂列表", "bu.reason.too_many": "课堂太多（最多 50 个）", "bu.reason.duplicate": "同一课堂选了两次",
  "bu.reason.lead": "主讲课堂不能同时作为接收课堂", "bu.reason.order": "须晚于开始时间",
  "bu.reason.before_start": "不能早于第一次上课", "bu.reason.object": "格式无效",
  "bu.code.invalid_time": "时间无效", "bu.code.no_remote_classroom": "请至少选择一个接收课堂",
  "bu.code.unknown_classroom": "课堂不存在（可能已被删除）", "bu.code.unknown_teacher": "教师不存在（可能已被删除）",
  "bu.code.unknown_school": "学校不存在（可能已被删除）", "bu.code.not_lead_capable": "该课堂是接收课堂，不能主讲",
  "bu.code.conflict": "时间冲突", "bu.code.lesson_cancelled": "课程已取消，不能修改",
  "bu.code.occurrence_started": "这次课已开始，不能取消", "bu.code.in_use": "仍在使用中，不能删除",
  "bu.code.self_revoke": "不能吊销自己的密钥（请另一位管理员操作）", "bu.code.already_revoked": "已吊销",
  "bu.code.unauthorized": "密钥无效或已吊销，请重新登录", "bu.code.not_found": "找不到（可能已被删除）",
  "bu.code.rate_limited": "尝试过于频繁，请稍后再试", "bu.code.body_too_large": "文件太大（最大 1 MiB）",
  "bu.code.bad_json": "请求格式无效", "bu.code.csv_encoding": "文件不是 UTF-8 编码：请另存为“CSV UTF-8”",
  "bu.code.csv_header": "首行须为列名 school,classroom,role", "bu.code.csv_empty": "文件为空",
  "bu.code.csv_syntax": "文件不是有效的 CSV", "bu.code.csv_too_many_rows": "行数太多（最多 2000 行）",
  "bu.code.internal": "服务器出错，请稍后再试",
  "bu.invalid_value": "取值无效", "bu.invalid_datetime": "时间格式无效", "bu.failed": "操作失败（{code}）",
  "bu.field_error": "{field}：{text}",
  // error codes (server → page)
  "err.bad_state": "该操作与课堂当前的状态不符，已刷新显示。",
  "err.bad_state.spotlight": "该课堂已经在聚焦中。",
  "err.bad_state.grant_floor": "该课堂已经在发言，或已不在线。",
  "err.bad_state.revoke_floor": "该课堂没有在发言。",
  "err.bad_state.mute": "该课堂已经静音。",
  "err.bad_state.unmute": "该课堂没有被静音。",
  "err.bad_state.raise_hand": "本班已经举手了。",
  "err.bad_state.lower_hand": "本班没有举手。",
  "err.floor_full": "发言名额已满：请先让正在发言的课堂下麦。",
  "err.unknown_classroom": "该课堂不在本节课中。",
  "err.forbidden": "本课堂没有权限进行这个操作。",
  "err.not_connected": "与服务器的连接已断开，正在重新连接，请稍后再试。",
  "err.bad_json": "页面与服务器的版本不一致，请刷新页面。",
  "err.message_too_large": "消息太大，服务器没有接受，请刷新页面。",
  "err.binary_not_supported": "页面与服务器的版本不一致，请刷新页面。",
  "err.bad_version": "页面与服务器的版本不一致，请刷新页面。",
  "err.unknown_type": "页面与服务器的版本不一致，请刷新页面。",
  "err.bad_field": "页面与服务器的版本不一致，请刷新页面。",
  "err.not_joined": "还没有进入课堂，请稍候再试。",
  "err.already_joined": "本页已经进入课堂。",
  "err.token_missing": "链接中缺少加入令牌：请向教育局索取本课堂的链接。",
  "err.token_malformed": "链接不完整或已损坏：请重新复制本课堂的链接。",
  "err.token_invalid": "链接无效（不是本服务器发出的）：请向教育局索取新的链接。",
  "err.token_expired": "链接已过期：请向教育局索取新的链接。",
  "err.token_not_yet_valid": "还没到上课时间，链接尚未生效。",
  "err.lesson_unavailable": "本节课现在不能加入（已取消、已结束，或本课堂不在这节课的名单中）。",
  "err.lead_present": "主讲课堂已在另一台电脑上打开。",
  "err.sdp_invalid": "音视频连接协商失败，请刷新页面。",
  "err.rate_limited": "操作太频繁，请稍后再试。",
  "err.internal": "服务器出了问题，请稍后再试。",
  "err.join_timeout": "进入课堂超时，正在重试。",
  "err.replaced": "本课堂已在另一处打开，本页已断开。",
  "err.shutting_down": "服务器正在重启，稍后会自动重新连接。",
  "err.cluster_unavailable": "服务器集群暂时无法分配课堂，稍后会自动重试。",
  "err.recorder_refused": "录制程序没有被允许进入课堂。",
  "err.too_many_connections": "服务器连接太多，请稍后再试。",
  "err.lesson_ended": "本节课已结束。",
  "err.not_found": "没有找到（可能还没有录像，或录像已被删除）。",
  "err.http.401": "链接无效或已过期。", "err.http.403": "没有权限查看。",
  "err.http.404": "没有找到这个录像（可能还在录制，或已被删除）。",
  "err.fallback": "操作没有成功（{code}）。",
};

const en = {
  "state.connecting": "Connecting", "state.joined": "Connected", "state.reconnecting": "Reconnecting",
  "state.left": "Left", "state.ended": "Lesson over",
  "lesson.default": "Lesson",
  "lang.toggle": "中文", "lang.toggle.title": "切换为中文",
  "no_token": "The link has no join token: ask your bureau for this classroom's link.",
  "cannot_join": "Cannot join: {reason}",
  "replaced": "This classroom was opened elsewhere; this page is disconnected.",
  "lesson_ended.by": "{name} ended the lesson. Thank you for taking part.",
  "lesson_ended": "The lesson has ended. Thank you for taking part.",
  "camera_unavailable": "Camera or microphone unavailable: {reason}",
  "recording.link": "Playback", "recording.link.title": "This lesson's recording (for 30 days after it)",
  "recording.on": "● Recording", "recording.on.title": "This lesson is being recorded",
  "net.title": "Network", "net.good": "Network good", "net.fair": "Network fair", "net.poor": "Network poor",
  "you": "This classroom",
  "link.estimate": "Estimate {v} kbit/s", "link.sent": "Sent {v} kbit/s", "link.loss": "Loss {v} %",
  "link.rtt": "Round trip {v} ms", "link.up_loss": "Uplink loss {v} %", "link.up_estimate": "Uplink estimate {v} kbit/s",
  "link.paused": "{n} video stream(s) paused (sound kept)",
  "lead.title": "Lead classroom",
  "live.off": "Not live", "live.on": "● LIVE",
  "viewers": "{n} classrooms watching",
  "screen.share": "Share screen", "screen.stop": "Stop sharing",
  "students.on": "Students camera", "students.off": "Stop students camera",
  "screen.error": "Cannot share the screen: {reason}", "students.error": "Students camera/mic unavailable: {reason}",
  "queue.title": "Raised hands", "queue.empty": "No hands raised",
  "absent.title": "Absent classrooms", "absent.none": "Every expected classroom is here",
  "grant": "Give floor", "revoke": "Revoke floor", "mute": "Mute", "unmute": "Unmute",
  "spot": "Spotlight", "spot.on": "★ Spotlighted", "spot.clear": "Clear spotlight",
  "spot.title": "Show this classroom to every remote classroom", "spot.on.title": "Spotlighted: click again to clear",
  "tile.hand": "Hand raised", "tile.muted": "Muted", "tile.floor": "Has the floor", "tile.speaking": "Speaking",
  "timer.title": "Lesson time",
  "end": "End lesson", "end.confirm": "End the lesson? Every classroom is disconnected and cannot join it again.",
  "end.cancel": "Cancel", "end.ok": "End lesson",
  "help.button": "Shortcuts", "help.title": "Keyboard shortcuts", "help.close": "Close",
  "key.g": "Give the floor to the first raised hand",
  "key.r": "Revoke the floor from the classroom that holds it",
  "key.digit": "Give / revoke the floor of classroom 1–9 (press again to revoke)",
  "key.s": "Spotlight / clear the spotlight on the classroom that holds the floor",
  "key.help": "Show / hide this help",
  "key.esc": "Close a dialog",
  "remote.title": "Remote classroom",
  "floor.banner": "You have the floor",
  "hand.raise": "Raise hand", "hand.lower": "Lower hand",
  "spot.label": "Speaking: {name}",
  "fullscreen": "Full screen", "fullscreen.exit": "Exit full screen",
  "volume": "Volume", "volume.title": "The lead classroom's volume",
  "mic.on": "Mic on", "mic.off": "Mic off",
  "mic.title": "Turn this classroom's microphone off / on (others hear it while it has the floor)",
  "muted_by_lead": "The lead teacher muted this classroom",
  "audio.unlock": "Click to start audio", "audio.unlock.title": "The browser plays the lesson's sound only after a click",
  "watch_only": "Watching only",
  "observer.title": "Observer", "observer.badge": "Watching only, invisible to classrooms",
  "notes.title": "Observation notes", "notes.text": "Note", "notes.text.placeholder": "Write an observation (only observers, research staff and the teacher see it; classrooms never do)",
  "notes.dimension": "Dimension", "notes.dimension.none": "(no dimension)", "notes.score": "Score", "notes.score.none": "(no score)",
  "notes.moment": "Mark this moment", "notes.moment.marked": "★ Marked {t} (click to clear)",
  "notes.moment.title": "Anchor the note at the moment this is pressed, not when it is saved",
  "notes.send": "Save note", "notes.saved": "Saved, at {t} in the recording", "notes.failed": "Not saved: {reason}",
  "notes.empty_text": "Write the note first.", "notes.none": "No notes yet. Only observers see these notes; classrooms do not.",
  "err.bad_field.note": "The note was not accepted (empty or too long, an unknown dimension or score, or a wrong moment).",
  "err.forbidden.note": "Only observers may write observation notes.",
  "err.rate_limited.note": "Notes are coming too fast: save again in a moment.",
  "pb.title": "Lesson playback", "pb.teacher": "Teacher", "pb.screen": "Courseware", "pb.students": "Students",
  "pb.no_picture": "No picture", "pb.no_screen": "No courseware",
  "pb.play": "▶ Play", "pb.pause": "⏸ Pause", "pb.speed": "Speed", "pb.seek": "Position",
  "pb.timeline": "Event timeline", "pb.report": "Lesson analysis report",
  "pb.no_manifest": "No recording chosen: open it from the bureau page's recordings, or from \"Recording\" beside a classroom's join link.",
  "pb.choose.title": "Choose a recording to play",
  "pb.choose.how": "Playback links come from the education bureau's administrators: log in to the bureau page and click \"Recording playback\" in its Recordings list to open or copy a link (valid for an hour). Teachers: ask your school's administrator.",
  "pb.choose.bureau": "Open the bureau page's recordings", "pb.choose.home": "Back to the start page",
  "pb.choose.key": "Bureau administrator API key (used on this page only, never stored)", "pb.choose.list": "List recordings",
  "pb.choose.empty": "There are no recordings to play yet.", "pb.choose.report": "Analysis report",
  "pb.choose.count": "{n} recording(s)", "pb.choose.minutes": "{n} min",
  "pb.load_failed": "Cannot load the recording: {reason}", "pb.bad_format": "Unknown recording format ({format})",
  "pb.unavailable": "This recording cannot be played", "pb.bad_manifest": "The recording's manifest is damaged or incomplete and cannot be read",
  "pb.sound": "Click \"Play\" to turn the sound on",
  "pbn.title": "Observation notes", "pbn.observer": "Observer", "pbn.all_observers": "All observers", "pbn.all_dimensions": "All dimensions",
  "pbn.count": "{shown} of {total} shown", "pbn.export": "Export CSV", "pbn.observation": "Observation report",
  "pbn.add": "Add a note at this position", "pbn.add.placeholder": "An observation while watching, placed at the playback position", "pbn.failed": "That did not work ({code})",
  "ev.hand_raised": "Hand raised", "ev.hand_lowered": "Hand lowered", "ev.floor_granted": "Floor given",
  "ev.floor_revoked": "Floor revoked", "ev.spotlight": "Spotlight", "ev.mute": "Muted", "ev.unmute": "Unmuted",
  "ev.join": "Joined", "ev.leave": "Left", "ev.lesson_ended": "Lesson ended", "ev.gap": "Recording gap",
  "index.title": "Synchronous remote classroom",
  "index.intro": "Classroom links come from the bureau's schedule page, or from the demo-lesson links the server prints when it starts (also in data/demo-links.txt).",
  "index.bureau": "Bureau schedule", "index.metrics": "Prometheus metrics", "index.health": "Health",
  // bureau page ("bu.*")
  "bu.page_title": "Bureau schedule — Synchronous classroom", "bu.h1": "Bureau schedule",
  "bu.logout": "Log out", "bu.login": "Log in", "bu.api_key": "Administrator API key", "bu.login.invalid": "Invalid API key",
  "bu.tab.schedule": "Schedule", "bu.tab.setup": "District set-up",
  "bu.hint.no_lead": "No lead-capable classroom yet: add schools and classrooms under “District set-up” first.",
  "bu.today": "Today", "bu.today.empty": "No lessons today.",
  "bu.week": "Week", "bu.prev_week": "‹ Previous", "bu.this_week": "This week", "bu.next_week": "Next ›",
  "bu.new_lesson": "＋ New lesson",
  "bu.wd.0": "Mon", "bu.wd.1": "Tue", "bu.wd.2": "Wed", "bu.wd.3": "Thu", "bu.wd.4": "Fri", "bu.wd.5": "Sat", "bu.wd.6": "Sun",
  "bu.status.scheduled": "scheduled", "bu.status.live": "live", "bu.status.ended": "ended", "bu.status.cancelled": "cancelled",
  "bu.lead_prefix": "Lead: ", "bu.join_link": "join link", "bu.observer_link": "observer link",
  "bu.connected": "{n}/{total} connected", "bu.copy_links": "Copy / print links",
  "bu.rec.playback": "Recording playback", "bu.rec.report": "Lesson analysis report", "bu.rec.analysing": "analysing…",
  "bu.choose": "— choose —", "bu.no_lead": "(no lead-capable classroom)", "bu.hardware": " (hardware)",
  "bu.conflict": "Scheduling conflict:", "bu.conflict.teacher": "teacher {name}", "bu.conflict.classroom": "classroom {name}",
  "bu.choose_date": "choose a date",
  "bu.cancel.one": "{date} only", "bu.cancel.all": "the whole lesson", "bu.cancel.confirm": "Cancel “{title}” — {what}?",
  "bu.form.new": "New lesson", "bu.form.edit": "Edit lesson {id}",
  "bu.form.until": "Weekly until (optional)", "bu.form.exceptions": "Exceptions (YYYY-MM-DD, comma separated)",
  "bu.form.recording": "Record this lesson", "bu.save": "Save", "bu.links": "Join links", "bu.cancel_lesson": "Cancel lesson",
  "bu.cancel_occurrence": "Cancel this week", "bu.close": "Close",
  "bu.setup.empty": "A fresh install: add schools, then classrooms and teachers — or import them from a CSV file.",
  "bu.schools": "Schools", "bu.school_name": "School name", "bu.add": "＋ Add", "bu.teachers": "Teachers", "bu.person_name": "Name",
  "bu.classrooms": "Classrooms", "bu.classroom_name": "Classroom name", "bu.role": "Role", "bu.role.lead": "Lead-capable",
  "bu.role.lead.title": "can also receive", "bu.role.remote": "Remote only", "bu.kind.browser": "Browser", "bu.kind.hardware": "Hardware",
  "bu.import.title": "Import schools and classrooms from CSV",
  "bu.import.help": "UTF-8 (Excel: save as “CSV UTF-8”); header row school,classroom,role (optional: kind); role is lead or remote. Rows with problems are never imported; the others are imported together.",
  "bu.csv_file": "CSV file", "bu.csv_check": "Check (dry run)", "bu.csv_import": "Import", "bu.csv.choose": "Choose a CSV file",
  "bu.csv.dry_run": "Dry run: {ok} rows OK, {bad} rows with problems (will not be imported)", "bu.csv.new_schools": "; new schools: {names}",
  "bu.csv.imported": "Imported {rooms} classrooms, {schools} new schools; {bad} rows skipped",
  "bu.csv.ignored": " (ignored columns: {cols})", "bu.csv.row": "Row", "bu.csv.status": "Status", "bu.csv.ok": "OK", "bu.csv.done": "imported ✓",
  "bu.admins": "Administrators", "bu.devices": "Devices", "bu.devices.note": "(classroom PCs, terminals)", "bu.device_name": "Device name",
  "bu.name": "Name", "bu.delete": "Delete", "bu.delete.confirm": "Delete {what}?",
  "bu.school_counts": "{rooms} classrooms · {teachers} teachers", "bu.me": " (me)",
  "bu.revoked": "revoked", "bu.active": "active", "bu.revoke": "Revoke", "bu.revoke.confirm": "Revoke {name}?",
  "bu.seen.never": "never seen", "bu.seen.offline": "offline · last seen {when}", "bu.seen.in_lesson": "in lesson", "bu.seen.online": "online",
  "bu.seen.loss": "loss", "bu.seen.recv": "recv", "bu.seen.sent": "sent",
  "bu.secret.once": "{label} — shown only this once: store it now", "bu.copy": "Copy",
  "bu.secret.admin": "API key of the new administrator {name}", "bu.secret.device": "Credential of device {name}",
  "bu.link.role.lead": "Lead", "bu.link.role.remote": "Remote", "bu.link.role.observer": "Observer",
  "bu.links.title": "Join links — “{title}” {day}", "bu.links.valid": "Valid {day} {from} – {to}",
  "bu.copied": "Copied ✓", "bu.copy_manual": "Select and copy", "bu.links.print": "Print sheet with QR codes",
  "bu.sheet.opens": "opens 15 minutes before the start",
  "bu.recs": "Recordings", "bu.refresh": "Refresh", "bu.recs.default": "Record new lessons by default", "bu.recs.lesson": "Lesson",
  "bu.recs.all": "All lessons", "bu.recs.empty": "No recordings yet: a recorded lesson appears here when it has begun.",
  "bu.recs.now": "recording", "bu.recs.complete": "complete", "bu.recs.incomplete": "incomplete",
  "bu.recs.tracks": "{n} tracks", "bu.recs.no_report": "no analysis report yet", "bu.recs.kept_until": "kept until {date}", "bu.recs.kept": "kept",
  "bu.recs.min": "{m} min {s} s", "bu.recs.sec": "{s} s",
  "bu.recs.retention": "kept {days} days", "bu.recs.forever": "kept forever", "bu.recs.off": "recording is off on this server",
  "bu.recs.guard": "The recordings disk is low on space: recording is paused ({free} free, needs {need}).",
  "bu.field.subject": "Subject", "bu.field.title": "Title", "bu.field.lead_classroom_id": "Lead classroom",
  "bu.field.lead_teacher_id": "Lead teacher", "bu.field.remote_classroom_ids": "Remote classrooms", "bu.field.start": "Start",
  "bu.field.end": "End", "bu.field.recording": "Recording", "bu.field.recurrence": "Weekly repeat",
  "bu.field.recurrence.until": "Weekly until", "bu.field.recurrence.exceptions": "Exceptions", "bu.field.recurrence.frequency": "Frequency",
  "bu.field.name": "Name", "bu.field.school_id": "School", "bu.field.classroom_id": "Classroom", "bu.field.kind": "Kind",
  "bu.field.lead_capable": "Lead-capable", "bu.field.date": "Date", "bu.field.dry_run": "Dry run",
  "bu.form.start": "Start", "bu.form.end": "End",
  "bu.reason.required": "is required", "bu.reason.too_long": "is too long", "bu.reason.text": "contains invalid characters", "bu.reason.id": "choose one",
  "bu.reason.bool": "must be yes or no", "bu.reason.choice": "is not one of the choices", "bu.reason.unknown": "is not a known field",
  "bu.reason.list": "must be a list of classrooms", "bu.reason.too_many": "too many (at most 50)", "bu.reason.duplicate": "lists a classroom twice",
  "bu.reason.lead": "the lead classroom cannot also be a remote", "bu.reason.order": "must be after the start",
  "bu.reason.before_start": "must not be before the first lesson", "bu.reason.object": "is malformed",
  "bu.code.invalid_time": "invalid time", "bu.code.no_remote_classroom": "choose at least one remote classroom",
  "bu.code.unknown_classroom": "the classroom does not exist (deleted?)", "bu.code.unknown_teacher": "the teacher does not exist (deleted?)",
  "bu.code.unknown_school": "the school does not exist (deleted?)", "bu.code.not_lead_capable": "this is a remote classroom: it cannot lead",
  "bu.code.conflict": "scheduling conflict", "bu.code.lesson_cancelled": "the lesson is cancelled",
  "bu.code.occurrence_started": "this lesson has already begun", "bu.code.in_use": "still in use: cannot delete",
  "bu.code.self_revoke": "you cannot revoke your own key (ask another administrator)", "bu.code.already_revoked": "already revoked",
  "bu.code.unauthorized": "invalid or revoked key: log in again", "bu.code.not_found": "not found (deleted?)",
  "bu.code.rate_limited": "too many attempts: try again shortly", "bu.code.body_too_large": "the file is too large (1 MiB at most)",
  "bu.code.bad_json": "malformed request", "bu.code.csv_encoding": "the file is not UTF-8: save it as “CSV UTF-8”",
  "bu.code.csv_header": "the header row must be school,classroom,role", "bu.code.csv_empty": "the file is empty",
  "bu.code.csv_syntax": "the file is not valid CSV", "bu.code.csv_too_many_rows": "too many rows (2000 at most)",
  "bu.code.internal": "server error: try again later",
  "bu.invalid_value": "invalid value", "bu.invalid_datetime": "invalid date or time", "bu.failed": "the request failed ({code})",
  "bu.field_error": "{field}: {text}",
  "err.bad_state": "That does not fit the lesson's current state; the page is up to date now.",
  "err.bad_state.spotlight": "That classroom is already spotlighted.",
  "err.bad_state.grant_floor": "That classroom already has the floor, or is no longer connected.",
  "err.bad_state.revoke_floor": "That classroom does not have the floor.",
  "err.bad_state.mute": "That classroom is already muted.",
  "err.bad_state.unmute": "That classroom is not muted.",
  "err.bad_state.raise_hand": "This classroom's hand is already raised.",
  "err.bad_state.lower_hand": "This classroom's hand is not raised.",
  "err.floor_full": "The floor is full: revoke the classroom that holds it first.",
  "err.unknown_classroom": "That classroom is not in this lesson.",
  "err.forbidden": "This classroom may not do that.",
  "err.not_connected": "Not connected to the server: reconnecting, try again in a moment.",
  "err.bad_json": "The page and the server do not match: reload the page.",
  "err.message_too_large": "The message was too large for the server: reload the page.",
  "err.binary_not_supported": "The page and the server do not match: reload the page.",
  "err.bad_version": "The page and the server do not match: reload the page.",
  "err.unknown_type": "The page and the server do not match: reload the page.",
  "err.bad_field": "The page and the server do not match: reload the page.",
  "err.not_joined": "Not in the lesson yet: try again in a moment.",
  "err.already_joined": "This page is already in the lesson.",
  "err.token_missing": "The link has no join token: ask your bureau for this classroom's link.",
  "err.token_malformed": "The link is incomplete or damaged: copy this classroom's link again.",
  "err.token_invalid": "The link is not valid (this server did not issue it): ask your bureau for a new one.",
  "err.token_expired": "The link has expired: ask your bureau for a new one.",
  "err.token_not_yet_valid": "The lesson has not opened yet.",
  "err.lesson_unavailable": "This lesson cannot be joined now (cancelled, over, or this classroom is not on its list).",
  "err.lead_present": "The lead classroom is already open on another computer.",
  "err.sdp_invalid": "The audio/video connection could not be set up: reload the page.",
  "err.rate_limited": "Too many attempts: try again in a moment.",
  "err.internal": "The server had a problem: try again in a moment.",
  "err.join_timeout": "Joining took too long: trying again.",
  "err.replaced": "This classroom was opened elsewhere; this page is disconnected.",
  "err.shutting_down": "The server is restarting: the page reconnects by itself.",
  "err.cluster_unavailable": "The server cluster cannot place the lesson just now: the page retries by itself.",
  "err.recorder_refused": "The recorder was not allowed into the lesson.",
  "err.too_many_connections": "The server has too many connections: try again in a moment.",
  "err.lesson_ended": "The lesson has ended.",
  "err.not_found": "Not found (there may be no recording yet, or it was deleted).",
  "err.http.401": "The link is not valid or has expired.", "err.http.403": "Not allowed to see this.",
  "err.http.404": "No such recording (it may still be recording, or it was deleted).",
  "err.fallback": "That did not work ({code}).",
  // bureau: the term dashboard (bureau_analytics.js)
  "dash.tab": "Research dashboard",
  "dash.title": "Research dashboard", "dash.intro": "Classroom-behaviour data of the analysed lessons: per teacher, school and remote classroom",
  "dash.from": "From", "dash.to": "To", "dash.school": "School", "dash.teacher": "Teacher", "dash.subject": "Subject",
  "dash.all": "All", "dash.apply": "Show", "dash.csv": "Export CSV:",
  "dash.csv.lessons": "Lessons", "dash.csv.remote_classrooms": "Remote classrooms", "dash.csv.teachers": "Teachers",
  "dash.csv.schools": "Schools",
  "dash.totals": "Overview", "dash.lessons": "Lessons", "dash.mean_rt": "Mean Rt", "dash.mean_ch": "Mean Ch",
  "dash.teacher_share": "Teacher talk share", "dash.modes": "Teaching modes",
  "dash.mode.practice": "Practice", "dash.mode.lecture": "Lecture", "dash.mode.dialogue": "Dialogue",
  "dash.mode.mixed": "Mixed",
  "dash.chart.rt_ch": "Rt and Ch over time", "dash.chart.modes": "Teaching modes per teacher",
  "dash.chart.fairness": "How often each remote classroom had the floor", "dash.chart.scores": "Observation scores",
  "dash.fairness": "Remote classrooms: who gets heard (the least heard first)", "dash.classroom": "Remote classroom",
  "dash.with_floor": "Lessons with the floor", "dash.floor_share": "Share with the floor", "dash.heard_min": "Heard (min)",
  "dash.hands": "Hands / unanswered", "dash.rarely_heard": "Rarely heard",
  "dash.teachers": "Teachers", "dash.rt_trend": "Rt change per 30 days", "dash.no_teacher": "No teacher set",
  "dash.schools": "Schools", "dash.lessons_led": "Lessons led", "dash.remote_lessons": "Lessons as remote",
  "dash.scores": "Observation scores per dimension", "dash.dimension": "Dimension", "dash.count": "Notes", "dash.mean": "Mean",
  "dash.spread": "Std. dev.", "dash.no_scores": "No scores yet: they appear here once observers score lessons live or on playback.",
  "dash.none": "No analysed lessons in this selection.", "dash.failed": "Could not load:",
};

export const MESSAGES = { "zh-CN": zh, en };

// Every error code the server may send a page (tests check each has an entry in both languages).
export const ERROR_CODES = [
  "bad_json", "message_too_large", "binary_not_supported", "bad_version", "unknown_type", "bad_field",
  "not_joined", "already_joined", "token_missing", "token_malformed", "token_invalid", "token_expired",
  "token_not_yet_valid", "lesson_unavailable", "forbidden", "lead_present", "sdp_invalid", "rate_limited",
  "internal", "join_timeout", "replaced", "shutting_down", "recorder_refused", "too_many_connections",
  "bad_state", "floor_full", "unknown_classroom", "lesson_ended", "not_found", "cluster_unavailable",
];

function pick(value) {
  if (!value) return null;
  const v = String(value).toLowerCase();
  if (v.startsWith("en")) return "en";
  if (v.startsWith("zh")) return "zh-CN";
  return null;
}

function initialLang() {
  const fromUrl = pick(new URLSearchParams(location.search).get("lang"));
  if (fromUrl) return fromUrl;
  let stored = null;
  try { stored = pick(localStorage.getItem(STORE_KEY)); } catch (e) { /* storage disabled */ }
  if (stored) return stored;
  return pick(navigator.language) || "zh-CN";
}

let current = initialLang();
export const i18nEvents = new EventTarget();

export function lang() { return current; }

export function t(key, vars = {}) {
  const text = MESSAGES[current][key] ?? MESSAGES["zh-CN"][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars[name] ?? ""));
}

export function has(key) { return key in MESSAGES[current]; }

// The teacher's words for a failed request: the error code (and the request type, for
// bad_state) chosen from the dictionary, never the server's English developer message.
export function errorText(err, action) {
  const code = err && err.code;
  if (!code) return t("err.not_connected");
  if (action && has(`err.${code}.${action}`)) return t(`err.${code}.${action}`);
  if (has(`err.${code}`)) return t(`err.${code}`);
  return t("err.fallback", { code });
}

export function applyI18n(root = document) {
  document.documentElement.lang = current;
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of root.querySelectorAll("[data-i18n-aria-label]")) node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
}

export function setLang(value) {
  const next = pick(value) || "zh-CN";
  current = next;
  try { localStorage.setItem(STORE_KEY, next); } catch (e) { /* storage disabled */ }
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) { url.searchParams.set("lang", next); history.replaceState(null, "", url); }
  applyI18n();
  i18nEvents.dispatchEvent(new CustomEvent("langchange", { detail: next }));
}

// A small button that switches between the two languages (its label is the other language).
export function langToggle() {
  const button = document.createElement("button");
  button.type = "button";
  button.id = "lang";
  button.className = "secondary lang";
  const label = () => { button.textContent = t("lang.toggle"); button.title = t("lang.toggle.title"); };
  label();
  button.addEventListener("click", () => setLang(current === "en" ? "zh-CN" : "en"));
  i18nEvents.addEventListener("langchange", label);
  return button;
}

// A classroom link's figures (the "link"/"links" messages) for a tooltip, in the page's language.
export function linkText(link) {
  const paused = Object.values(link.layers || {}).filter((l) => l < 0).length;
  const parts = [
    t("link.estimate", { v: link.estimate_kbps }), t("link.sent", { v: link.sent_kbps }),
    t("link.loss", { v: (100 * (link.loss || 0)).toFixed(1) }), t("link.rtt", { v: link.rtt_ms }),
  ];
  if (link.up_loss !== undefined) parts.push(t("link.up_loss", { v: (100 * link.up_loss).toFixed(1) }));
  if (link.up_estimate_kbps !== undefined) parts.push(t("link.up_estimate", { v: link.up_estimate_kbps }));
  if (paused) parts.push(t("link.paused", { n: paused }));
  return parts.join("\n");
}

// mm:ss, or h:mm:ss past an hour.
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}
