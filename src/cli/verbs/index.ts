/**
 * Every verb, in the order `--help`, the man page and the completion list them. One module per verb
 * group; each verb is a description (name, summary, arguments, options, examples, handler).
 */
import type { Verb } from '../verb.js';
import { allow } from './allow.js';
import { attach, detach } from './attach.js';
import { ban, list, unban } from './bans.js';
import { config } from './config.js';
import { history, top } from './history.js';
import { reload, status } from './status.js';

export const VERBS: readonly Verb[] = [attach, detach, status, ban, unban, list, history, top, reload, config, allow];
