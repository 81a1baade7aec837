from wheelcave.cli.main import main

main()
