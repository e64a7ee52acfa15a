from netsim.demo import main


def test_demo_prints_a_table(capsys):
    main(["--devices", "3", "--rounds", "2", "--payload-bits", "1e6", "--seed", "1"])
    out = capsys.readouterr().out.splitlines()
    body = out[3:-1]  # title, header, rule ... final line
    assert len(body) == 6  # 3 devices x 2 rounds
    assert all(len(line.split()) >= 7 for line in body)
    assert out[-1].startswith("simulated time")


def test_demo_is_reproducible(capsys):
    main(["--devices", "2", "--rounds", "1", "--seed", "4", "--mobility", "static"])
    first = capsys.readouterr().out
    main(["--devices", "2", "--rounds", "1", "--seed", "4", "--mobility", "static"])
    assert capsys.readouterr().out == first
