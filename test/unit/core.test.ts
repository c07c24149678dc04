import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance } from '../../src/core/did-you-mean.js';
import {
  durationAtMost,
  formatDuration,
  MAX_DURATION_MS,
  MAX_TIMER_MS,
  parseDuration,
  timerDelay,
} from '../../src/core/duration.js';
import { NAMES_LISTED, nameList } from '../../src/core/name-list.js';
import { formatSize, parseSize } from '../../src/core/size.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['0s', 0],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['10', 's', '10 s', '-1s', '1w', '1e3s', ''])('rejects %j', (text) =>
    expect(parseDuration(text)).toBeNull(),
  );

  it('formats back to the largest exact unit', () => {
    expect(formatDuration(300_000)).toBe('5m');
    expect(formatDuration(1500)).toBe('1500ms');
    expect(formatDuration(4000)).toBe('4s');
  });

  it('keeps a config duration and a deadline plus its grace within what a timer holds', () => {
    expect(MAX_DURATION_MS).toBe(parseDuration('24d'));
    expect(MAX_DURATION_MS + 5000).toBeLessThan(MAX_TIMER_MS);
    expect(durationAtMost('24d', MAX_DURATION_MS)).toBe(true);
    expect(durationAtMost('24.1d', MAX_DURATION_MS)).toBe(false);
    expect(durationAtMost('25d', MAX_DURATION_MS)).toBe(false);
    // Too long to count is too long, not "not a duration" (parseDuration gives null for it).
    expect(durationAtMost(`${'9'.repeat(400)}ms`, MAX_DURATION_MS)).toBe(false);
    // Not a duration at all is the pattern's business.
    expect(durationAtMost('soon', MAX_DURATION_MS)).toBe(true);
    expect(timerDelay(30 * 86_400_000)).toBe(MAX_TIMER_MS);
    expect(timerDelay(5000)).toBe(5000);
  });
});

describe('parseSize', () => {
  it.each([
    ['512b', 512],
    ['16kb', 16_384],
    ['16k', 16_384],
    ['10mb', 10 * 1024 * 1024],
    ['1GB', 1024 ** 3],
    ['1.5kb', 1536],
  ])('%s is %d bytes', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(['16', 'kb', '16 tb', '-1kb'])('rejects %j', (text) => expect(parseSize(text)).toBeNull());

  it('formats back to the largest exact unit', () => {
    expect(formatSize(16_384)).toBe('16kb');
    expect(formatSize(1000)).toBe('1000b');
  });
});

describe('didYouMean', () => {
  it('computes edit distances', () => {
    expect(editDistance('listen', 'listn')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  // Each two edits apart as plain Levenshtein counts them: keys of 3 to 5 letters (one edit
  // allowed) got no suggestion for the commonest typo.
  it('counts two adjacent letters swapped as one edit', () => {
    expect(editDistance('uesr', 'user')).toBe(1);
    expect(editDistance('paht', 'path')).toBe(1);
    expect(editDistance('ab', 'ba')).toBe(1);
    expect(editDistance('abc', 'ca')).toBe(3);
    expect(didYouMean('uesr', ['user', 'group'])).toBe('user');
    expect(didYouMean('levle', ['level', 'format'])).toBe('level');
    expect(didYouMean('mathc', ['match', 'proxy'])).toBe('match');
    expect(didYouMean('retyr', ['retry', 'targets'])).toBe('retry');
  });

  it('suggests a close key and nothing for a far one', () => {
    expect(didYouMean('listn', ['listen', 'limits', 'routes'])).toBe('listen');
    expect(didYouMean('server_names', ['server_name', 'servers'])).toBe('server_name');
    expect(didYouMean('zzzzzz', ['listen', 'routes'])).toBeUndefined();
  });

  it('prefers the closest candidate to one merely contained in the word', () => {
    const upstreams = Array.from({ length: 300 }, (_, i) => `u${i}`);
    // `u5` is inside `uu51` but two edits away; `u51` is one.
    expect(didYouMean('uu51', upstreams)).toBe('u51');
    expect(didYouMean('uu51', ['u5', 'u51'])).toBe('u51');
    expect(didYouMean('uu51', ['u51', 'u5'])).toBe('u51');
  });

  it('breaks ties by distance, then containment, then order', () => {
    // Both one edit away: the one contained in the word wins, wherever it stands.
    expect(didYouMean('apis', ['apix', 'api'])).toBe('api');
    // Both one edit away and neither contained: the first.
    expect(didYouMean('apix', ['apiy', 'apiz'])).toBe('apiy');
    // A contained candidate far beyond the limit still counts, but a closer one wins.
    expect(didYouMean('backend', ['my-backend-service'])).toBe('my-backend-service');
    expect(didYouMean('backend', ['my-backend-service', 'backnd'])).toBe('backnd');
  });
});

describe('nameList', () => {
  const many = Array.from({ length: 300 }, (_, i) => `u${i}`);

  it('lists a few names whole, in written order', () => {
    expect(nameList(['backend', 'static'], 'assets')).toBe('backend, static');
    expect(nameList(many.slice(0, NAMES_LISTED))).toBe('u0, u1, u2, u3, u4, u5, u6, u7');
  });

  it('lists the first of many, and how many more there are', () => {
    expect(nameList(many)).toBe('u0, u1, u2, u3, u4, u5, u6, u7 and 292 more');
    expect(nameList(many, 'missing')).toBe('u0, u1, u2, u3, u4, u5, u6, u7 and 292 more');
  });

  it('lists the closest of many to the word first, then the first ones', () => {
    // Contained in the word and one edit away; contained and two; then two edits, in written order.
    expect(nameList(many, 'U299x')).toBe('u299, u29, u99, u199, u209, u219, u229, u239 and 292 more');
  });
});
