// The CLI's one validated option parser (issue 12, item 8): what a number flag accepts, and how errors are classed.
import { CommanderError, InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { intArg, nonEmptyArg } from '../../../cli/options.js';
import { exitCodeOf, jsonRequested, reasonOf } from '../../../cli/usage.js';
import { ConfigError, UsageError } from '../../../core/errors.js';

describe('intArg', () => {
  it('accepts integers in range, as typed', () => {
    expect(intArg(1)('1')).toBe(1);
    expect(intArg(1)(' 12 ')).toBe(12);
    expect(intArg(0)('0')).toBe(0);
    expect(intArg(1, 1000)('1000')).toBe(1000);
  });

  it.each(['0', '-2', 'abc', '1.5', '1e3', '', ' ', '0x10', 'Infinity', '99999999999999999999'])(
    'refuses %j for a minimum of 1, naming the range',
    (v) => {
      expect(() => intArg(1)(v)).toThrow(InvalidArgumentError);
      expect(() => intArg(1)(v)).toThrow('Expected an integer ≥ 1.');
    },
  );

  it('says both ends of a bounded range', () => {
    expect(() => intArg(1, 1000)('1001')).toThrow('Expected an integer from 1 to 1000.');
  });
});

describe('usage errors', () => {
  it('an empty argument is refused', () => {
    expect(nonEmptyArg('TOTAL')).toBe('TOTAL');
    expect(() => nonEmptyArg('  ')).toThrow(InvalidArgumentError);
  });

  it('bad usage and configuration exit 2, failures 1, help 0', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(2);
    expect(exitCodeOf(new ConfigError('x'))).toBe(2);
    expect(exitCodeOf(new CommanderError(1, 'commander.unknownOption', 'x'))).toBe(2);
    expect(exitCodeOf(new CommanderError(0, 'commander.helpDisplayed', 'x'))).toBe(0);
    expect(exitCodeOf(new Error('boom'))).toBe(1);
    expect(reasonOf(new UsageError('x'))).toBe('BadUsage');
    expect(reasonOf(new CommanderError(1, 'commander.invalidArgument', 'x'))).toBe('BadUsage');
    expect(reasonOf(new Error('boom'))).toBe('Failed');
  });

  it('--json is seen anywhere before a --', () => {
    expect(jsonRequested(['node', 'main', 'status', '--json'])).toBe(true);
    expect(jsonRequested(['node', 'main', 'query', '--', '--json'])).toBe(false);
  });
});
