import {describe, expect, it} from 'vitest'
import {UserError} from '../../src/errors.js'
import {checkClusterName, expandNames, expandPattern, labelProblem, matchNames, nextNames, summarizeNames} from '../../src/names.js'

describe('expandPattern', () => {
  it.each([
    ['node1', ['node1']],
    ['node[1:3]', ['node1', 'node2', 'node3']],
    ['node[1:1]', ['node1']],
    ['node[001:003]', ['node001', 'node002', 'node003']],
    ['node[08:11]', ['node08', 'node09', 'node10', 'node11']],
    ['n[9:11]x', ['n9x', 'n10x', 'n11x']],
    ['r[1:2]-n[1:2]', ['r1-n1', 'r1-n2', 'r2-n1', 'r2-n2']],
    ['[1:2]a', ['1a', '2a']],
    ['node[0:2]', ['node0', 'node1', 'node2']],
  ])('%s', (pattern, names) => {
    expect(expandPattern(pattern)).toEqual(names)
  })

  it('expands node[1:300] to 300 names, last node300', () => {
    const n = expandPattern('node[1:300]')
    expect(n).toHaveLength(300)
    expect(n.at(-1)).toBe('node300')
  })

  it.each([
    ['node[5:1]', /counts down.*\[1:5\]/, 'E_PATTERN_RANGE'],
    ['node[1:]', /not a valid name pattern/, 'E_PATTERN_INVALID'],
    ['node[a:b]', /not a valid name pattern/, 'E_PATTERN_INVALID'],
    ['node[1-3]', /not a valid name pattern/, 'E_PATTERN_INVALID'],
    ['node]', /not a valid name pattern/, 'E_PATTERN_INVALID'],
    ['n[1:100000]', /more than 10000/, 'E_PATTERN_TOO_MANY'],
    ['a[1:200]b[1:200]', /more than 10000/, 'E_PATTERN_TOO_MANY'],
  ])('refuses %s', (pattern, message, code) => {
    try {
      expandPattern(pattern)
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(UserError)
      expect((e as UserError).message).toMatch(message)
      expect((e as UserError).code).toBe(code)
      expect((e as UserError).message).not.toContain('\n')
    }
  })
})

describe('labelProblem', () => {
  it.each([
    ['node1', undefined],
    ['a', undefined],
    ['web-01', undefined],
    ['a'.repeat(63), undefined],
    ['a'.repeat(64), /at most 63/],
    ['bad_name!', /not a valid host name/],
    ['-node', /not a valid host name/],
    ['node-', /not a valid host name/],
    ['Node1', /lower case: node1/],
    ['', /empty/],
    ['nöde', /not a valid host name/],
    ['node.example', /not a valid host name/],
  ])('%s', (name, problem) => {
    const p = labelProblem(name)
    if (problem === undefined) expect(p).toBeUndefined()
    else expect(p).toMatch(problem)
  })
})

describe('expandNames', () => {
  it('combines patterns and plain names in order', () => {
    expect(expandNames(['a[1:2]', 'b', 'c[3:3]'])).toEqual(['a1', 'a2', 'b', 'c3'])
  })
  it('refuses duplicates across patterns, naming them', () => {
    expect(() => expandNames(['node[1:3]', 'node2'])).toThrow(/node2 named more than once/)
  })
  it("refuses 'bad_name!'", () => {
    expect(() => expandNames(['bad_name!'])).toThrow(UserError)
  })
})

describe('nextNames', () => {
  it.each([
    ['node', 3, [], ['node1', 'node2', 'node3']],
    ['node', 2, ['node1', 'node5', 'other9', 'node-7'], ['node6', 'node7']],
    ['node', 2, ['node009', 'node010'], ['node011', 'node012']],
    ['web-', 1, ['web-4'], ['web-5']],
    ['n', 1, ['node7'], ['n1']],
  ])('%s x%i after %j', (prefix, count, existing, out) => {
    expect(nextNames(prefix, count, existing)).toEqual(out)
  })
  it('refuses a bad prefix and a bad count', () => {
    expect(() => nextNames('Bad_', 1, [])).toThrow(/--prefix/)
    expect(() => nextNames('node', 0, [])).toThrow(/--count/)
  })
})

describe('matchNames', () => {
  const existing = ['node1', 'node2', 'node3', 'web1']
  it.each([
    [['node[1:2]'], ['node1', 'node2'], []],
    [['node*'], ['node1', 'node2', 'node3'], []],
    [['node?', 'web1'], ['node1', 'node2', 'node3', 'web1'], []],
    [['node[2:4]'], ['node2', 'node3'], ['node4']],
    [['nosuch'], [], ['nosuch']],
    [['db*'], [], ['db*']],
    [['node1', 'node1'], ['node1'], []],
    [['node[1:2]*'], ['node1', 'node2'], []],
    [['*1'], ['node1', 'web1'], []],
  ])('%j', (patterns, matched, missing) => {
    expect(matchNames(patterns, existing)).toEqual({matched, missing})
  })

  // A stray bracket used to reach new RegExp() and print a SyntaxError with its stack (exit 1).
  it.each(['node[*', 'x[*', 'node]*', 'node[1:2*', 'node[a:b]*', 'node.*', 'no/de*', 'Node*'])('%j is a one-line usage error (exit 2)', (p) => {
    expect(() => matchNames([p], existing)).toThrow(expect.objectContaining({code: 'E_PATTERN_INVALID', exit: 2}))
  })

  it.each(['../../leak', '/etc/passwd', 'Node1', 'a_b'])('%j is not a host name: usage error (exit 2), not "not found"', (p) => {
    expect(() => matchNames([p], existing)).toThrow(expect.objectContaining({code: 'E_NAME_INVALID', exit: 2}))
  })
})

describe('checkClusterName', () => {
  it.each(['default', 'prod-eu', 'c1'])('accepts %j', (c) => {
    expect(checkClusterName(c)).toBe(c)
  })
  it.each(['../../escaped', '..', '../../..', 'BAD!', 'a/b', '', 'x'.repeat(64)])('refuses %j with one line naming the flag (exit 2)', (c) => {
    expect(() => checkClusterName(c)).toThrow(expect.objectContaining({code: 'E_CLUSTER_INVALID', exit: 2, message: expect.stringMatching(/^--cluster \(or BELT_CLUSTER\): [^\n]*cluster name/)}))
  })
})

describe('summarizeNames', () => {
  it('lists a few and counts the rest', () => {
    expect(summarizeNames(['a', 'b'])).toBe('a, b')
    expect(summarizeNames(['a', 'b', 'c', 'd', 'e', 'f', 'g'], 3)).toBe('a, b, c and 4 more')
  })
})
